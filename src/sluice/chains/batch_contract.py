"""The ``BatchPayout`` contract: its packaged artifact, its verification, its set-up.

``contracts/BatchPayout.sol`` pays many withdrawals in one call for its owner only (the account
that deployed it); ``payToken`` moves tokens with ``transferFrom(owner, …)``, so the owner
approves the contract once per token. `contracts/build.mjs` writes its artifact beside this
module (``BatchPayout.json``: ``abi``, ``bytecode``, ``deployedBytecode``), packaged with Sluice.

The owner lives in storage, not in an immutable, so every deployment has the same runtime code:
a deployed contract is recognised by the keccak-256 of its code (`RUNTIME_CODE_HASH`), and
`verify_batch_contract` checks a configured one (code there, BatchPayout's code, owned by the
hot wallet it is configured for) at every start (`sluice.services.network_health`).

`set_up_batch_contract` is what `sluice contracts deploy` and `sluice dev` do for one hot wallet:
keep the configured contract if it verifies, or deploy a new one from the wallet; then approve
it for every configured token. Each transaction is sent from the hot wallet outside the engine,
at the chain's pending nonce, and awaited to its receipt before the next one is signed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final, Protocol

import rlp
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from sluice.domain.addresses import Address
from sluice.domain.assets import Asset, Network
from sluice.domain.transaction import UnsignedTransaction
from sluice.errors import SluiceError
from sluice.ports import ChainClient, Receipt, Signer
from sluice.services.fee_markets import read_market

__all__ = [
    "APPROVE_SELECTOR",
    "ENOUGH_ALLOWANCE",
    "MAX_ALLOWANCE",
    "OWNER_SELECTOR",
    "RUNTIME_CODE_HASH",
    "Approval",
    "BatchContractError",
    "BatchContractSetUp",
    "BatchPayoutArtifact",
    "ContractReader",
    "approve_payload",
    "artifact",
    "created_address",
    "creation_payload",
    "set_up_batch_contract",
    "verify_batch_contract",
]

_ARTIFACT_FILE = "BatchPayout.json"

#: ``owner()`` selector.
OWNER_SELECTOR: Final = bytes.fromhex("8da5cb5b")
#: ERC-20 ``approve(address,uint256)`` selector.
APPROVE_SELECTOR: Final = bytes.fromhex("095ea7b3")

#: The allowance the hot wallet gives its batch contract for each token: ``type(uint256).max``.
MAX_ALLOWANCE: Final = 2**256 - 1
#: An allowance at least this large is left as it is: it was the maximum (tokens that lower an
#: unlimited allowance on every ``transferFrom`` leave it far above this for ever).
ENOUGH_ALLOWANCE: Final = 2**255

#: Added to a gas estimate, in percent (as the engine's payouts: `sluice.services.signing`).
GAS_MARGIN_PERCENT: Final = 20
#: How long each set-up transaction may wait for its receipt, in seconds.
RECEIPT_TIMEOUT_S: Final = 120.0


class BatchContractError(SluiceError):
    """A batch contract could not be set up: a transaction reverted, was not mined in time, or
    lost its nonce to another; or the contract deployed does not verify."""

    code = "batch_contract_error"


@dataclass(frozen=True, slots=True)
class BatchPayoutArtifact:
    """The compiled contract: its creation code and the runtime code a deployment has."""

    bytecode: bytes
    deployed_bytecode: bytes
    source_sha256: str

    @property
    def runtime_code_hash(self) -> bytes:
        """keccak-256 of the runtime code: what every deployment's code hashes to."""
        return keccak(self.deployed_bytecode)


@cache
def artifact() -> BatchPayoutArtifact:
    """The packaged artifact (read once).

    Raises:
        ValueError: The packaged file is not such an artifact (a broken build).
    """
    text = resources.files("sluice.chains").joinpath(_ARTIFACT_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("contractName") != "BatchPayout":
        raise ValueError(f"{_ARTIFACT_FILE} is not BatchPayout's artifact")
    codes = []
    for key in ("bytecode", "deployedBytecode"):
        value = data.get(key)
        if not isinstance(value, str) or not value.startswith("0x") or len(value) <= 2:
            raise ValueError(f"{_ARTIFACT_FILE}: {key!r} must be non-empty 0x-prefixed hex")
        codes.append(bytes.fromhex(value[2:]))
    return BatchPayoutArtifact(
        bytecode=codes[0], deployed_bytecode=codes[1], source_sha256=str(data.get("sourceSha256"))
    )


#: keccak-256 of BatchPayout's runtime code (``deployedBytecode``).
RUNTIME_CODE_HASH: Final = artifact().runtime_code_hash


def creation_payload() -> bytes:
    """The init code of a contract creation that deploys BatchPayout (its constructor takes no
    arguments: the owner is the sender)."""
    return artifact().bytecode


def approve_payload(spender: Address, amount: int = MAX_ALLOWANCE) -> bytes:
    """The call data of ``approve(spender, amount)``."""
    if not 0 <= amount <= MAX_ALLOWANCE:
        raise ValueError("an allowance is a uint256")
    return APPROVE_SELECTOR + _word(spender) + amount.to_bytes(32, "big")


def created_address(sender: Address, nonce: int) -> Address:
    """The address of the contract that ``sender``'s transaction at ``nonce`` creates:
    the last 20 bytes of ``keccak(rlp([sender, nonce]))``."""
    encoded = rlp.encode([bytes.fromhex(sender[2:]), nonce])
    return Address(to_checksum_address(keccak(encoded)[-20:]))


# ── Verification ──────────────────────────────────────────────────────────────────────────────


class ContractReader(Protocol):
    """What verification reads (`sluice.ports.ChainClient` and `EvmChainClient` answer it)."""

    async def code(self, address: Address) -> bytes:
        """The contract code at an address (empty for an account)."""
        ...

    async def call(self, to: Address, data: bytes) -> bytes:
        """What a read-only call returns."""
        ...


async def verify_batch_contract(
    chain: ContractReader, contract: Address, wallet: Address
) -> str | None:
    """Whether ``contract`` is a BatchPayout owned by ``wallet``.

    Returns:
        None when it is; otherwise why not, in one line: no code there, code that is not
        BatchPayout's, or another owner.

    Raises:
        ChainUnavailableError: The node did not answer (not a verdict: ask again).
    """
    code = await chain.code(contract)
    if not code:
        return f"batch contract {contract} of hot wallet {wallet} has no code on this chain"
    if keccak(code) != RUNTIME_CODE_HASH:
        return (
            f"batch contract {contract} of hot wallet {wallet} is not a BatchPayout (its code "
            f"hash is 0x{keccak(code).hex()}, BatchPayout's is 0x{RUNTIME_CODE_HASH.hex()})"
        )
    answer = await chain.call(contract, OWNER_SELECTOR)
    if len(answer) != 32 or any(answer[:12]):
        return f"batch contract {contract}: owner() answered no address"
    owner = Address(to_checksum_address(answer[12:]))
    if owner.lower() != wallet.lower():
        return f"batch contract {contract} is owned by {owner}, not by hot wallet {wallet}"
    return None


# ── Set-up ────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Approval:
    """What was done about one token's allowance."""

    token: Asset
    before: int
    """The allowance found."""
    reset: bool = False
    """A smaller nonzero allowance was set to 0 first (USDT refuses to change one otherwise)."""
    approved: bool = False
    """An ``approve(contract, max)`` was sent; False: the allowance was enough already."""


@dataclass(frozen=True, slots=True)
class BatchContractSetUp:
    """One hot wallet's batch contract after `set_up_batch_contract`."""

    wallet: Address
    contract: Address
    deployed: bool
    """True: deployed now; False: the configured one verified and was kept."""
    not_kept: str | None
    """Why the configured contract was not kept (None: none was configured, or it was kept)."""
    approvals: tuple[Approval, ...]
    sent: tuple[str, ...]
    """Hashes of the transactions sent, in order."""


#: Where progress goes: one line per step (`sluice contracts deploy` prints them).
Report = Callable[[str], None]


def _silent(_: str) -> None:
    """A `Report` that says nothing."""


async def set_up_batch_contract(
    network: Network,
    chain: ChainClient,
    signer: Signer,
    configured: Address | None,
    *,
    report: Report = _silent,
    receipt_timeout_s: float = RECEIPT_TIMEOUT_S,
) -> BatchContractSetUp:
    """Keep ``configured`` if it verifies for the signer's wallet, or deploy a BatchPayout from
    it; then, for each of the network's tokens, approve the contract for `MAX_ALLOWANCE` unless
    the allowance is `ENOUGH_ALLOWANCE` already (a smaller nonzero one is set to 0 first).

    Each transaction (of the network's fee model, priced from the chain as a payout's first
    attempt, its gas estimated by the node plus `GAS_MARGIN_PERCENT`) is sent at the wallet's
    pending nonce and awaited to its receipt. Running it again after a success sends nothing.

    Raises:
        BatchContractError: A transaction reverted, was not mined within
            ``receipt_timeout_s``, or lost its nonce; or the deployed contract does not verify.
        ChainUnavailableError: The node did not answer, or refused a transaction.
        CallRevertedError: A gas estimate reverts (a token whose ``approve`` reverts, say).
        SigningRefusedError: The signer would not sign (`sluice signer` signs no creation).
    """
    wallet = signer.address
    sent: list[str] = []
    not_kept: str | None = None
    contract: Address | None = None
    if configured is not None:
        not_kept = await verify_batch_contract(chain, configured, wallet)
        if not_kept is None:
            contract = configured
            report(f"{wallet}: batch contract {configured} verifies; kept")
        else:
            report(f"{wallet}: {not_kept}; deploying a new one")
    deployed = contract is None
    if contract is None:
        nonce, receipt = await _send(
            network,
            chain,
            signer,
            to=None,
            data=creation_payload(),
            what="the BatchPayout deployment",
            report=report,
            timeout_s=receipt_timeout_s,
        )
        sent.append(receipt.transaction_hash)
        contract = created_address(wallet, nonce)
        why = await verify_batch_contract(chain, contract, wallet)
        if why is not None:
            raise BatchContractError(f"the deployed contract does not verify: {why}")
        report(f"{wallet}: BatchPayout deployed at {contract} (block {receipt.block_number})")
    approvals = []
    for token in network.tokens:
        assert token.token_address is not None  # noqa: S101 - tokens have addresses
        before = await chain.token_allowance(token.token_address, wallet, contract)
        if before >= ENOUGH_ALLOWANCE:
            report(f"{wallet}: {token.symbol} allowance of {contract} is the maximum already")
            approvals.append(Approval(token, before))
            continue
        steps = [0, MAX_ALLOWANCE] if before else [MAX_ALLOWANCE]
        for amount in steps:
            _nonce, receipt = await _send(
                network,
                chain,
                signer,
                to=token.token_address,
                data=approve_payload(contract, amount),
                what=f"{token.symbol} approve({contract}, {'max' if amount else 0})",
                report=report,
                timeout_s=receipt_timeout_s,
            )
            sent.append(receipt.transaction_hash)
        after = await chain.token_allowance(token.token_address, wallet, contract)
        if after < ENOUGH_ALLOWANCE:
            raise BatchContractError(
                f"{token.symbol} {token.token_address}: approve was mined but the allowance of "
                f"{contract} is {after}, not the maximum (does the token's approve work?)"
            )
        report(f"{wallet}: {token.symbol} approved for {contract}")
        approvals.append(Approval(token, before, reset=bool(before), approved=True))
    return BatchContractSetUp(
        wallet=wallet,
        contract=contract,
        deployed=deployed,
        not_kept=not_kept,
        approvals=tuple(approvals),
        sent=tuple(sent),
    )


async def _send(
    network: Network,
    chain: ChainClient,
    signer: Signer,
    *,
    to: Address | None,
    data: bytes,
    what: str,
    report: Report,
    timeout_s: float,
) -> tuple[int, Receipt]:
    """Sign ``data`` to ``to`` (None: a creation) from the signer's wallet at its pending nonce,
    send it and wait for a successful receipt.

    Returns:
        The nonce used, and the receipt.
    """
    wallet = signer.address
    nonce = await chain.transaction_count(wallet, pending=True)
    fees = network.fees.price(await read_market(network, chain))
    if to is None:
        estimate = await chain.estimate_creation_gas(wallet, data)
    else:
        estimate = await chain.estimate_gas(wallet, to, 0, data)
    gas = estimate + estimate * GAS_MARGIN_PERCENT // 100
    signed = await signer.sign(
        UnsignedTransaction(
            chain_id=network.chain_id,
            nonce=nonce,
            to=to,
            value=0,
            data=data,
            gas=gas,
            fees=fees,
            fee_model=network.fees.model,
        )
    )
    result = await chain.send_raw_transaction(signed.raw)
    if result.note in {"nonce_too_low", "replacement_underpriced"}:
        raise BatchContractError(
            f"{what}: nonce {nonce} of {wallet} was taken by another transaction meanwhile "
            "(is Sluice running and paying from this wallet?); run the command again"
        )
    report(f"{wallet}: sent {what} as {signed.hash} (nonce {nonce}); waiting for its receipt")
    receipt = await _receipt(chain, signed.hash, timeout_s, poll_s=network.poll_interval_s)
    if receipt is None:
        raise BatchContractError(
            f"{what} ({signed.hash}) has no receipt after {timeout_s:g} s; wait until it is "
            "mined, then run the command again (it keeps what is done)"
        )
    if not receipt.succeeded:
        raise BatchContractError(f"{what} ({signed.hash}) reverted in block {receipt.block_number}")
    return nonce, receipt


async def _receipt(
    chain: ChainClient, transaction_hash: str, timeout_s: float, *, poll_s: float
) -> Receipt | None:
    """The transaction's receipt, asked for every ``poll_s`` (0.2 to 2 s) until ``timeout_s``."""
    interval = min(max(poll_s, 0.2), 2.0)
    deadline = time.monotonic() + timeout_s
    while True:
        receipt = await chain.receipt(transaction_hash)
        if receipt is not None or time.monotonic() >= deadline:
            return receipt
        await asyncio.sleep(interval)


def _word(address: Address) -> bytes:
    """An address as one ABI word (left-padded to 32 bytes)."""
    return bytes.fromhex(address[2:]).rjust(32, b"\0")
