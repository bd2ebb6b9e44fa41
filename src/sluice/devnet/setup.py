"""Prepare a local chain for `sluice dev`: hot wallet key, demo token, funding, the hot
wallet's batch contract, config files.

Everything here is idempotent, so a second `make run` finds what the first one made (the chain
state, the keystore, the token) and only fills in what is missing.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from eth_account import Account

from sluice.chains.batch_contract import BatchContractSetUp, set_up_batch_contract
from sluice.chains.evm import EvmChainClient
from sluice.devnet.anvil import DEV_ACCOUNTS
from sluice.devnet.artifacts import load_demo_token
from sluice.domain.addresses import Address, parse_address
from sluice.domain.assets import Network
from sluice.errors import SluiceError
from sluice.ports import Signer
from sluice.signers.keystore import create_keystore

with warnings.catch_warnings():
    # web3 7 imports `websockets.legacy`, which websockets >= 14 deprecates on import.
    warnings.filterwarnings("ignore", message="websockets.legacy", category=DeprecationWarning)
    from web3 import HTTPProvider, Web3
    from web3.exceptions import Web3RPCError

NETWORK = "anvil"
CHAIN_ID = 31337
TOKEN_SYMBOL = "DEMO"  # noqa: S105 - a token ticker, not a password
TOKEN_DECIMALS = 18
ETHER = 10**18

#: Anvil's first default account (public test mnemonic): the dev chain's deployer and faucet.
DEPLOYER_KEY = DEV_ACCOUNTS[0].private_key

#: What the hot wallet is given in native coin when it holds less than `HOT_WALLET_MINIMUM`.
HOT_WALLET_FUNDING = 10_000 * ETHER
HOT_WALLET_MINIMUM = 1_000 * ETHER

#: The method that sets a balance, by the start of the node's ``web3_clientVersion`` (lower
#: case): ``anvil/v1.7.1``, ``HardhatNetwork/2.29.1/@nomicfoundation/edr/...``. Another node gets
#: Anvil's, and its answer is checked like any other.
_SET_BALANCE_METHODS = (("anvil", "anvil_setBalance"), ("hardhatnetwork", "hardhat_setBalance"))


class DevChainError(SluiceError):
    """The local chain could not be set up (say, the hot wallet could not be funded)."""

    code = "dev_chain_error"


@dataclass(frozen=True, slots=True)
class DevChain:
    """What dev set-up made on the chain."""

    hot_wallet: Address
    token: Address


def passphrase_file(data_dir: Path) -> Path:
    """Where `passphrase` keeps the passphrase it generates for dev."""
    return data_dir / "keys" / "dev-passphrase"


def passphrase(data_dir: Path) -> str:
    """The keystore passphrase: ``SLUICE_KEYSTORE_PASSPHRASE``, else one generated for dev.

    The generated one is kept beside the dev keystore (mode 0600, `passphrase_file`): fine for a
    throwaway local chain, never for real funds, where the passphrase comes from the environment
    only.
    """
    from_env = os.environ.get("SLUICE_KEYSTORE_PASSPHRASE")
    if from_env:
        return from_env
    path = passphrase_file(data_dir)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    path.touch(mode=0o600)
    path.write_text(value, encoding="utf-8")
    return value


def hot_wallet(data_dir: Path, secret: str, *, fast_kdf: bool = False) -> Path:
    """The dev hot wallet's keystore file, created on first use.

    ``fast_kdf`` (tests only) trades the key derivation's cost for speed.
    """
    path = data_dir / "keys" / "hot-wallet.json"
    if not path.exists():
        if fast_kdf:
            create_keystore(path, secret, kdf="pbkdf2", iterations=2)
        else:
            create_keystore(path, secret)
    return path


def _web3(rpc_url: str) -> Web3:
    return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))


def _send(w3: Web3, tx: dict[str, Any]) -> Any:
    deployer = Account.from_key(DEPLOYER_KEY)
    tx.setdefault("from", deployer.address)
    tx.setdefault("nonce", w3.eth.get_transaction_count(deployer.address, "pending"))
    tx.setdefault("chainId", CHAIN_ID)
    tx.setdefault("gas", w3.eth.estimate_gas(cast(Any, tx)))
    tx.setdefault("maxPriorityFeePerGas", 10**9)
    tx.setdefault("maxFeePerGas", 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9)
    signed = deployer.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), timeout=60
    )
    if receipt["status"] != 1:
        raise RuntimeError("dev set-up transaction reverted")
    return receipt


def prepare_chain(rpc_url: str, data_dir: Path, hot_wallet_address: Address) -> DevChain:
    """Deploy the demo token if needed and fund the hot wallet (blocking; run in a thread)."""
    w3 = _web3(rpc_url)
    artifact = load_demo_token()
    state_file = data_dir / "devnet.json"
    token: str | None = None
    if state_file.exists():
        token = json.loads(state_file.read_text(encoding="utf-8")).get("token")
    if token is None or len(w3.eth.get_code(Web3.to_checksum_address(token))) == 0:
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        data = factory.constructor("Sluice Demo Token", TOKEN_SYMBOL, TOKEN_DECIMALS, 0)
        receipt = _send(w3, {"data": data.build_transaction({"gas": 0})["data"]})
        token = str(receipt["contractAddress"])
    token_address = Web3.to_checksum_address(token)
    contract = w3.eth.contract(address=token_address, abi=artifact.abi)
    wallet = Web3.to_checksum_address(hot_wallet_address)

    # Funding: native coin straight from the node, tokens minted by the deployer (a real transfer).
    if w3.eth.get_balance(wallet) < HOT_WALLET_MINIMUM:
        fund_native(w3, Address(wallet), HOT_WALLET_FUNDING)
    if contract.functions.balanceOf(wallet).call() < 100_000 * ETHER:
        call = contract.functions.mint(wallet, 1_000_000 * ETHER)
        _send(w3, {"to": token_address, "data": call.build_transaction({"gas": 0})["data"]})

    state_file.write_text(json.dumps({"token": token_address}, indent=2) + "\n", encoding="utf-8")
    return DevChain(hot_wallet=hot_wallet_address, token=Address(token_address))


def set_balance_method(w3: Web3) -> str:
    """The JSON-RPC method that sets a balance on this node (Anvil's if it is not known)."""
    try:
        version = str(w3.client_version).lower()
    except Web3RPCError:  # a node without web3_clientVersion: try Anvil's method
        return _SET_BALANCE_METHODS[0][1]
    for prefix, method in _SET_BALANCE_METHODS:
        if version.startswith(prefix):
            return method
    return _SET_BALANCE_METHODS[0][1]


def fund_native(w3: Web3, wallet: Address, wei: int) -> None:
    """Set ``wallet``'s native balance to ``wei`` with the node's test method, and check it did.

    Raises:
        DevChainError: The node refused the call (an unknown method, say) or the balance is
            still below ``wei`` afterwards: a dev chain whose hot wallet holds nothing would
            fail every withdrawal much later, for a reason far from here.
    """
    method = set_balance_method(w3)
    answer: Any = w3.provider.make_request(cast(Any, method), [wallet, hex(wei)])
    error = answer.get("error") if isinstance(answer, dict) else "no JSON-RPC answer"
    if error is not None:
        message = error.get("message", error) if isinstance(error, dict) else error
        raise DevChainError(
            f"could not fund the hot wallet {wallet}: the node answered {method} with an error"
            f" ({message}); `sluice dev` needs a local test node (Anvil or Hardhat)"
        )
    balance = w3.eth.get_balance(Web3.to_checksum_address(wallet))
    if balance < wei:
        raise DevChainError(
            f"could not fund the hot wallet {wallet}: after {method} it holds {balance} wei,"
            f" not the {wei} asked for"
        )


def hot_wallet_address(keystore: Path) -> Address:
    """The address recorded in a keystore file (no decryption needed)."""
    data = json.loads(keystore.read_text(encoding="utf-8"))
    return Address(Web3.to_checksum_address("0x" + data["address"].removeprefix("0x")))


async def prepare_batch_contract(
    network: Network, rpc_url: str, signer: Signer, configured: Address | None
) -> BatchContractSetUp:
    """The hot wallet's BatchPayout on the dev chain, approved for the demo token: ``configured``
    (the previous start's) if it still verifies, else a new one deployed from the wallet
    (`sluice.chains.batch_contract.set_up_batch_contract`).

    Raises:
        SluiceError: A set-up transaction failed, or the node did not answer.
    """
    chain = EvmChainClient(rpc_url)
    try:
        return await set_up_batch_contract(network, chain, signer, configured)
    finally:
        await chain.close()


def batch_contract_in(path: Path, wallet: Address) -> Address | None:
    """The batch contract a networks file written by `write_networks_file` names for
    ``wallet``, if the file is there and names a valid one."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        contracts = data["networks"][NETWORK]["batching"]["contracts"]
        found = next(c for w, c in contracts.items() if w.lower() == wallet.lower())
        return parse_address(found)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, StopIteration):
        return None  # no file, another shape, or an invalid address (a ValueError): none


def write_networks_file(
    path: Path,
    *,
    rpc_url: str,
    keystore: Path,
    token: Address,
    confirmations: int,
    poll_interval_s: float,
    batch_contracts: Sequence[tuple[Address, Address]] = (),
) -> None:
    """The networks file `Settings` reads, for the dev chain; ``batch_contracts``, each hot
    wallet's batch contract (none: every withdrawal pays on its own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    batching = ""
    if batch_contracts:
        pairs = ", ".join(f'"{wallet}" = "{contract}"' for wallet, contract in batch_contracts)
        batching = f"""
[networks.{NETWORK}.batching]
contracts = {{ {pairs} }}
"""
    path.write_text(
        f"""# Written by `sluice dev`; rewritten at every start.
[networks.{NETWORK}]
chain_id = {CHAIN_ID}
rpc_urls = ["{rpc_url}"]
confirmations = {confirmations}
poll_interval_s = {poll_interval_s}
native_symbol = "ETH"
native_decimals = 18
hot_wallet_keystore = "{keystore.resolve()}"

[[networks.{NETWORK}.tokens]]
symbol = "{TOKEN_SYMBOL}"
address = "{token}"
decimals = {TOKEN_DECIMALS}
{batching}""",
        encoding="utf-8",
    )


@dataclass(frozen=True, slots=True)
class DevInfo:
    """What `.sluice/dev.json` tells other tools (and people) about the running dev instance."""

    apiUrl: str  # noqa: N815 - the file's keys are camelCase, as the API's
    apiKey: str  # noqa: N815 - as above
    rpcUrl: str  # noqa: N815 - as above
    network: str
    chainId: int  # noqa: N815 - as above
    hotWallet: str  # noqa: N815 - as above
    tokens: dict[str, str]
    demoUserId: str  # noqa: N815 - as above

    def write(self, path: Path) -> None:
        """Write dev.json (mode 0600: it holds an API key), atomically: a reader (`sluice demo`,
        a test) never sees a half-written file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.unlink(missing_ok=True)
        partial.touch(mode=0o600)
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        partial.replace(path)

    @classmethod
    def read(cls, path: Path) -> DevInfo:
        """Read dev.json."""
        return cls(**json.loads(path.read_text(encoding="utf-8")))
