"""`KeystoreSigner` and `create_keystore`: keystore files, key hygiene, and signatures the pinned
Anvil accepts."""

from __future__ import annotations

import asyncio
import json
import pickle
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from sluice.chains.evm import EvmChainClient
from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess
from sluice.domain.addresses import Address
from sluice.domain.fees import FeePolicy
from sluice.domain.transaction import NATIVE_TRANSFER_GAS, Fees, UnsignedTransaction
from sluice.errors import ConfigurationError
from sluice.ports import Signer
from sluice.signers.keystore import KeystoreSigner, create_keystore

PASSPHRASE = "correct horse battery staple"
WRONG_PASSPHRASE = "incorrect donkey battery staple"
DEV = DEV_ACCOUNTS[2]


def _fast_keystore(path: Path, private_key: str | None = DEV.private_key) -> Address:
    # PBKDF2 with 2 iterations keeps tests fast; real keystores keep eth_account's defaults.
    return create_keystore(path, PASSPHRASE, private_key=private_key, kdf="pbkdf2", iterations=2)


@pytest.fixture
def keystore(tmp_path: Path) -> Path:
    path = tmp_path / "wallet.json"
    _fast_keystore(path)
    return path


def _transaction(nonce: int = 0, *, fees: Fees | None = None) -> UnsignedTransaction:
    return UnsignedTransaction(
        chain_id=31337,
        nonce=nonce,
        to=DEV_ACCOUNTS[1].address,
        value=10**15,
        data=b"",
        gas=NATIVE_TRANSFER_GAS,
        fees=fees or Fees(max_fee_per_gas=3 * 10**9, max_priority_fee_per_gas=10**9),
    )


def test_create_keystore_writes_an_owner_only_v3_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "wallet.json"

    address = _fast_keystore(path)

    assert address == DEV.address
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = json.loads(path.read_text())
    assert content["version"] == 3
    assert DEV.private_key.removeprefix("0x") not in path.read_text()


def test_create_keystore_makes_a_new_key_when_given_none(tmp_path: Path) -> None:
    first = _fast_keystore(tmp_path / "a.json", private_key=None)
    second = _fast_keystore(tmp_path / "b.json", private_key=None)

    assert first != second
    assert KeystoreSigner.from_file(tmp_path / "a.json", PASSPHRASE).address == first


def test_create_keystore_with_scrypt(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"

    address = create_keystore(path, PASSPHRASE, kdf="scrypt", iterations=2)

    assert json.loads(path.read_text())["crypto"]["kdf"] == "scrypt"
    assert KeystoreSigner.from_file(path, PASSPHRASE).address == address


def test_create_keystore_never_overwrites(keystore: Path) -> None:
    before = keystore.read_bytes()

    with pytest.raises(ConfigurationError, match="exists already"):
        _fast_keystore(keystore, private_key=None)

    assert keystore.read_bytes() == before


def test_create_keystore_refuses_bad_input_without_quoting_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        create_keystore(tmp_path / "a.json", "")
    bad_key = "0x1234deadbeef"
    with pytest.raises(ConfigurationError) as excinfo:
        _fast_keystore(tmp_path / "b.json", private_key=bad_key)
    assert "1234deadbeef" not in str(excinfo.value)
    assert not (tmp_path / "a.json").exists()
    assert not (tmp_path / "b.json").exists()


def test_from_file_decrypts_the_key(keystore: Path) -> None:
    signer = KeystoreSigner.from_file(keystore, PASSPHRASE)

    assert signer.address == DEV.address
    assert isinstance(signer.address, str)


def test_a_wrong_passphrase_is_a_configuration_error_without_the_passphrase(
    keystore: Path,
) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        KeystoreSigner.from_file(keystore, WRONG_PASSPHRASE)

    message = str(excinfo.value)
    assert "wrong passphrase" in message
    assert WRONG_PASSPHRASE not in message
    assert PASSPHRASE not in message
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read"),
        (b"\xff\xfe not utf-8", "cannot read"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a Web3 Secret Storage"),
        (b'{"version": 3}', "not a Web3 Secret Storage"),
    ],
    ids=["missing", "binary", "not-json", "not-an-object", "no-crypto"],
)
def test_unusable_files_are_configuration_errors(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "wallet.json"
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(ConfigurationError, match=expected) as excinfo:
        KeystoreSigner.from_file(path, PASSPHRASE)

    assert PASSPHRASE not in str(excinfo.value)


def test_a_keystore_declaring_another_address_is_refused(keystore: Path) -> None:
    content = json.loads(keystore.read_text())
    content["address"] = DEV_ACCOUNTS[0].address.removeprefix("0x").lower()
    keystore.write_text(json.dumps(content))

    with pytest.raises(ConfigurationError, match="declares an address"):
        KeystoreSigner.from_file(keystore, PASSPHRASE)


def test_the_key_does_not_leak_through_repr_or_pickle(keystore: Path) -> None:
    signer = KeystoreSigner.from_file(keystore, PASSPHRASE)
    key_hex = DEV.private_key.removeprefix("0x")

    assert key_hex not in repr(signer).lower()
    assert key_hex not in str(signer).lower()
    assert DEV.address in repr(signer)
    assert not hasattr(signer, "__dict__")
    with pytest.raises(TypeError):
        pickle.dumps(signer)
    assert "private_key" not in repr(DEV)


async def test_sign_makes_an_eip1559_transaction_from_the_address(keystore: Path) -> None:
    signer: Signer = KeystoreSigner.from_file(keystore, PASSPHRASE)  # mypy checks the protocol
    unsigned = _transaction(nonce=7)

    signed = await signer.sign(unsigned)

    assert signed.raw[0] == 2  # EIP-2718 type 2
    assert signed.hash == "0x" + keccak(signed.raw).hex()
    assert signed.hash == signed.hash.lower()
    assert Account.recover_transaction(signed.raw) == signer.address
    decoded = _decode_type2(signed.raw)
    assert decoded["chainId"] == 31337
    assert decoded["nonce"] == 7
    assert decoded["to"] == DEV_ACCOUNTS[1].address.lower()
    assert decoded["value"] == 10**15
    assert decoded["gas"] == NATIVE_TRANSFER_GAS
    assert decoded["maxFeePerGas"] == 3 * 10**9
    assert decoded["maxPriorityFeePerGas"] == 10**9


def _decode_type2(raw: bytes) -> dict[str, object]:
    fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    to = fields["to"]
    assert isinstance(to, bytes)
    return {**fields, "to": "0x" + to.hex()}


@pytest.fixture
async def client(anvil: AnvilProcess) -> AsyncIterator[EvmChainClient]:
    chain = EvmChainClient(anvil.rpc_url)
    yield chain
    await chain.close()


async def test_anvil_accepts_and_mines_what_the_signer_signs(
    keystore: Path, client: EvmChainClient
) -> None:
    signer = KeystoreSigner.from_file(keystore, PASSPHRASE)
    recipient = Address(Account.create().address)
    nonce = await client.transaction_count(signer.address, pending=True)
    unsigned = UnsignedTransaction(
        chain_id=await client.chain_id(),
        nonce=nonce,
        to=recipient,
        value=42,
        data=b"",
        gas=NATIVE_TRANSFER_GAS,
        fees=FeePolicy().price(await client.fee_market(blocks=1, percentiles=())),
    )
    signed = await signer.sign(unsigned)

    result = await client.send_raw_transaction(signed.raw)
    # Anvil mines on arrival, but on a busy machine the receipt can lag the send a little.
    receipt = await client.receipt(signed.hash)
    for _ in range(100):
        if receipt is not None:
            break
        await asyncio.sleep(0.05)
        receipt = await client.receipt(signed.hash)

    assert result.accepted
    assert receipt is not None  # Anvil mines on arrival
    assert receipt.transaction_hash == signed.hash
    assert receipt.succeeded
    assert await client.balance(recipient) == 42
    assert await client.transaction_count(signer.address) == nonce + 1
