"""The AWS signers against moto's server on 127.0.0.1, through the standard AWS environment.

`SecretsManagerSigner`: the key is fetched at start and never shows in errors or ``repr``.
`KmsSigner`: a moto ``ECC_SECG_P256K1`` key signs, and the pinned Anvil mines the transaction
with the KMS key's address as its sender.

Moto 5.2.5 ignores ``MessageType=DIGEST`` in KMS Sign: it hashes the 32-byte digest again with
SHA-256 and signs that (getmoto/moto#10202, open, fixes it). Real KMS signs the digest as given.
The `kms_signs_digests` fixture makes the in-process moto server do what AWS does, for DIGEST
requests with ECDSA_SHA_256 only; `test_moto_alone_hashes_the_digest_again` pins moto's
behaviour, so it fails once moto is fixed and the fixture can go.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from botocore.session import get_session  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)
from eth_account import Account
from eth_keys.datatypes import PublicKey
from eth_utils.crypto import keccak
from pydantic import SecretStr

from sluice.chains.evm import EvmChainClient
from sluice.config import NetworkConfig, Settings
from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess
from sluice.domain.addresses import Address
from sluice.domain.fees import FeeMarket, FeeModel, FeePolicy
from sluice.domain.transaction import NATIVE_TRANSFER_GAS, Fees, UnsignedTransaction
from sluice.errors import ConfigurationError, SluiceError, TransientError
from sluice.ports import Signer
from sluice.signers.keystore import KeystoreSigner, create_keystore
from sluice.signers.kms import KmsSigner
from sluice.signers.loading import load_signers
from sluice.signers.secrets_manager import SecretsManagerSigner
from sluice.testing.anvil_control import AnvilControl
from sluice.testing.moto import MotoServer

DEV = DEV_ACCOUNTS[2]
OTHER = DEV_ACCOUNTS[0]
KEY_HEX = DEV.private_key.removeprefix("0x").lower()


def client(service: str) -> Any:
    return get_session().create_client(service)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def transaction(
    nonce: int = 0, *, chain_id: int = 31337, fees: Fees | None = None
) -> UnsignedTransaction:
    return UnsignedTransaction(
        chain_id=chain_id,
        nonce=nonce,
        to=DEV_ACCOUNTS[1].address,
        value=10**15,
        data=b"",
        gas=NATIVE_TRANSFER_GAS,
        fees=fees or Fees(max_fee_per_gas=3 * 10**9, max_priority_fee_per_gas=10**9),
    )


def assert_no_key(text: str) -> None:
    assert KEY_HEX not in text.lower()


# ── Secrets Manager ──────────────────────────────────────────────────────────────────────────


def create_secret(value: str) -> str:
    name = unique("sluice-hot-wallet")
    client("secretsmanager").create_secret(Name=name, SecretString=value)
    return name


@pytest.mark.parametrize(
    "value",
    [
        DEV.private_key,
        KEY_HEX,
        f"  {KEY_HEX.upper()}\n",
        json.dumps({"privateKey": DEV.private_key}),
        json.dumps({"privateKey": KEY_HEX, "address": DEV.address}),
    ],
    ids=["0x-hex", "bare-hex", "padded-upper-hex", "json", "json-with-address"],
)
def test_secrets_manager_signer_loads_each_accepted_format(aws: MotoServer, value: str) -> None:
    signer = SecretsManagerSigner.from_secret(create_secret(value))

    assert signer.address == DEV.address


async def test_secrets_manager_signer_signs_as_the_keystore_signer_does(
    aws: MotoServer, tmp_path: Path
) -> None:
    secret_id = create_secret(DEV.private_key)
    signer: Signer = SecretsManagerSigner.from_secret(secret_id)  # mypy checks the protocol
    keystore = tmp_path / "wallet.json"
    create_keystore(keystore, "pass", private_key=DEV.private_key, kdf="pbkdf2", iterations=2)
    unsigned = transaction(nonce=5)

    signed = await signer.sign(unsigned)

    assert Account.recover_transaction(signed.raw) == DEV.address
    assert signed.raw[0] == 2
    assert signed.hash == "0x" + keccak(signed.raw).hex()
    assert signed == await KeystoreSigner.from_file(keystore, "pass").sign(unsigned)  # RFC 6979


def test_secrets_manager_signer_is_found_by_arn(aws: MotoServer) -> None:
    name = unique("sluice-hot-wallet")
    arn = client("secretsmanager").create_secret(Name=name, SecretString=KEY_HEX)["ARN"]

    assert SecretsManagerSigner.from_secret(arn).address == DEV.address


def test_the_secret_does_not_leak_through_repr_or_pickle(aws: MotoServer) -> None:
    secret_id = create_secret(DEV.private_key)
    signer = SecretsManagerSigner.from_secret(secret_id)

    assert_no_key(repr(signer))
    assert_no_key(str(signer))
    assert DEV.address in repr(signer)
    assert secret_id in repr(signer)
    assert not hasattr(signer, "__dict__")
    with pytest.raises(TypeError):
        pickle.dumps(signer)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (KEY_HEX[:-2], "64 hex digits"),
        (KEY_HEX + "00", "64 hex digits"),
        ("0x" + "0" * 64, "not a valid secp256k1"),
        ("f" * 64, "not a valid secp256k1"),
        ('{"privateKey": "' + KEY_HEX + '"', "does not parse"),
        (json.dumps({"key": KEY_HEX}), '"privateKey"'),
        (json.dumps([KEY_HEX]), "64 hex digits"),
        (json.dumps({"privateKey": KEY_HEX, "address": OTHER.address}), "declares"),
        (f"password={KEY_HEX}", "64 hex digits"),
    ],
    ids=[
        "short",
        "long",
        "zero",
        "above-n",
        "broken-json",
        "json-without-privateKey",
        "json-array",
        "wrong-address",
        "other-text",
    ],
)
def test_a_malformed_secret_is_a_configuration_error_without_the_key(
    aws: MotoServer, value: str, expected: str
) -> None:
    secret_id = create_secret(value)

    with pytest.raises(ConfigurationError, match=expected) as excinfo:
        SecretsManagerSigner.from_secret(secret_id)

    assert secret_id in str(excinfo.value)
    assert_no_key(str(excinfo.value))
    assert_no_key(repr(excinfo.value))
    assert excinfo.value.__suppress_context__ or excinfo.value.__context__ is None
    assert excinfo.value.__cause__ is None


def test_a_binary_secret_is_refused(aws: MotoServer) -> None:
    name = unique("sluice-hot-wallet")
    client("secretsmanager").create_secret(Name=name, SecretBinary=bytes.fromhex(KEY_HEX))

    with pytest.raises(ConfigurationError, match="no SecretString") as excinfo:
        SecretsManagerSigner.from_secret(name)

    assert_no_key(str(excinfo.value))


def test_a_missing_secret_is_a_configuration_error_naming_it(aws: MotoServer) -> None:
    name = unique("sluice-missing")

    with pytest.raises(ConfigurationError, match="ResourceNotFoundException") as excinfo:
        SecretsManagerSigner.from_secret(name)

    assert name in str(excinfo.value)
    assert aws.endpoint_url not in str(excinfo.value)
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__


class _DeniedSecretsManager:
    """A client whose every call is refused as AWS refuses one without permission."""

    def get_secret_value(self, **_: Any) -> dict[str, Any]:
        raise ClientError(
            {
                "Error": {"Code": "AccessDeniedException", "Message": "not authorized"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            "GetSecretValue",
        )


def test_access_denied_is_a_configuration_error(aws: MotoServer) -> None:
    # Moto's server does not enforce IAM policies: the refusal is AWS's, replayed.
    with pytest.raises(ConfigurationError, match="AccessDeniedException") as excinfo:
        SecretsManagerSigner.from_secret("hot-wallet", client=_DeniedSecretsManager())

    assert "hot-wallet" in str(excinfo.value)
    assert "not authorized" not in str(excinfo.value)


def test_an_unreachable_secrets_manager_is_a_configuration_error(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A port nothing listens on (the first one, privileged and unused on 127.0.0.1).
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    with pytest.raises(ConfigurationError, match="cannot fetch the secret") as excinfo:
        SecretsManagerSigner.from_secret("hot-wallet")

    assert "127.0.0.1:1" not in str(excinfo.value)


# ── KMS ───────────────────────────────────────────────────────────────────────────────────────


def create_kms_key(key_spec: str = "ECC_SECG_P256K1", usage: str = "SIGN_VERIFY") -> str:
    metadata = client("kms").create_key(KeySpec=key_spec, KeyUsage=usage)["KeyMetadata"]
    return str(metadata["KeyId"])


def test_kms_signer_derives_the_address_of_the_kms_key(aws: MotoServer) -> None:
    key_id = create_kms_key()
    kms = client("kms")
    alias = f"alias/{unique('sluice')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)

    signer = KmsSigner.from_key_id(key_id)
    by_alias = KmsSigner.from_key_id(alias)

    # Independently of the signer's code: eth_keys from the raw point of the DER key.
    der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    point = load_der_public_key(der)
    assert isinstance(point, ec.EllipticCurvePublicKey)
    raw = point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert str(signer.address) == PublicKey(raw[1:]).to_checksum_address()
    assert by_alias.address == signer.address
    assert signer.key_id.endswith(key_id)  # AWS answers the key's ARN, moto its bare id
    assert by_alias.key_id == signer.key_id  # the alias is resolved once, at start
    assert key_id in repr(signer)


async def test_kms_signer_signs_what_the_chain_accepts(
    aws: MotoServer, kms_signs_digests: MotoServer, anvil: AnvilProcess
) -> None:
    signer = KmsSigner.from_key_id(create_kms_key())
    checked: Signer = signer  # mypy checks the protocol
    recipient = Address(Account.create().address)
    chain = EvmChainClient(anvil.rpc_url)
    try:
        async with AnvilControl(anvil.rpc_url) as control:
            await control.set_balance(signer.address, 10**18)
            signed_hashes = []
            # Several transactions: each signature's recovery id is found, whichever it is.
            for nonce in range(4):
                signed = await checked.sign(
                    UnsignedTransaction(
                        chain_id=await chain.chain_id(),
                        nonce=nonce,
                        to=recipient,
                        value=1000 + nonce,
                        data=b"",
                        gas=NATIVE_TRANSFER_GAS,
                        fees=FeePolicy().price(await chain.fee_market(blocks=1, percentiles=())),
                    )
                )
                assert Account.recover_transaction(signed.raw) == signer.address
                assert signed.hash == "0x" + keccak(signed.raw).hex()
                result = await chain.send_raw_transaction(signed.raw)
                assert result.accepted
                signed_hashes.append(signed.hash)
            for tx_hash in signed_hashes:
                receipt = await _mined(chain, tx_hash)
                assert receipt.succeeded
                mined = await control.call("eth_getTransactionByHash", [tx_hash])
                assert mined["from"].lower() == signer.address.lower()
                assert int(mined["type"], 16) == 2
        assert await chain.balance(recipient) == sum(1000 + n for n in range(4))
        assert await chain.transaction_count(signer.address) == 4
    finally:
        await signer.close()
        await chain.close()


async def test_kms_signer_signs_legacy_transactions_a_berlin_chain_accepts(
    aws: MotoServer, kms_signs_digests: MotoServer, anvil: AnvilProcess
) -> None:
    signer = KmsSigner.from_key_id(create_kms_key())
    recipient = Address(Account.create().address)
    berlin = AnvilProcess()  # no EIP-1559: type 0 only (``anvil`` for its skip rule and mark)
    await berlin.astart(extra_args=["--hardfork", "berlin"])
    chain = EvmChainClient(berlin.rpc_url)
    try:
        async with AnvilControl(berlin.rpc_url) as control:
            await control.set_balance(signer.address, 10**18)
            fees = FeePolicy(model=FeeModel.LEGACY).price(
                FeeMarket(gas_price=await chain.gas_price())
            )
            signed_hashes = []
            # Several: each signature's recovery id is found, and v is EIP-155's for it.
            for nonce in range(4):
                signed = await signer.sign(
                    UnsignedTransaction(
                        chain_id=await chain.chain_id(),
                        nonce=nonce,
                        to=recipient,
                        value=1000 + nonce,
                        data=b"",
                        gas=NATIVE_TRANSFER_GAS,
                        fees=fees,
                        fee_model=FeeModel.LEGACY,
                    )
                )
                assert Account.recover_transaction(signed.raw) == signer.address
                assert (await chain.send_raw_transaction(signed.raw)).accepted
                signed_hashes.append(signed.hash)
            for tx_hash in signed_hashes:
                receipt = await _mined(chain, tx_hash)
                assert receipt.succeeded
                assert receipt.fee_paid == NATIVE_TRANSFER_GAS * fees.max_fee_per_gas
                mined = await control.call("eth_getTransactionByHash", [tx_hash])
                assert mined["from"].lower() == signer.address.lower()
                assert mined["type"] == "0x0"
                assert int(mined["v"], 16) in {31337 * 2 + 35, 31337 * 2 + 36}
        assert await chain.balance(recipient) == sum(1000 + n for n in range(4))
    finally:
        await signer.close()
        await chain.close()
        await berlin.astop()


async def _mined(chain: EvmChainClient, tx_hash: str) -> Any:
    # Anvil mines on arrival, but on a busy machine the receipt can lag the send a little.
    for _ in range(200):
        receipt = await chain.receipt(tx_hash)
        if receipt is not None:
            return receipt
        await asyncio.sleep(0.05)
    raise AssertionError(f"{tx_hash} was not mined")


async def test_moto_alone_hashes_the_digest_again(aws: MotoServer) -> None:
    """Without `kms_signs_digests`, moto signs sha256(digest): no recovery id gives the key's
    address, and the signer refuses rather than produce a transaction from someone else."""
    signer = KmsSigner.from_key_id(create_kms_key())

    try:
        with pytest.raises(ConfigurationError, match="does not recover to the expected address"):
            await signer.sign(transaction())
    finally:
        await signer.close()


@pytest.mark.parametrize(
    ("key_spec", "usage", "expected"),
    [
        ("ECC_NIST_P256", "SIGN_VERIFY", "key spec is 'ECC_NIST_P256'"),
        ("RSA_2048", "SIGN_VERIFY", "key spec is 'RSA_2048'"),
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "key spec is 'SYMMETRIC_DEFAULT'"),
        ("ECC_SECG_P256K1", "KEY_AGREEMENT", "key usage is 'KEY_AGREEMENT'"),
    ],
)
def test_a_kms_key_that_cannot_sign_for_ethereum_is_refused(
    aws: MotoServer, key_spec: str, usage: str, expected: str
) -> None:
    key_id = create_kms_key(key_spec, usage)

    with pytest.raises(ConfigurationError, match=expected) as excinfo:
        KmsSigner.from_key_id(key_id)

    assert key_id in str(excinfo.value)


def test_a_missing_kms_key_is_a_configuration_error(aws: MotoServer) -> None:
    key_id = str(uuid.uuid4())

    with pytest.raises(ConfigurationError, match="NotFoundException") as excinfo:
        KmsSigner.from_key_id(key_id)

    assert key_id in str(excinfo.value)
    assert aws.endpoint_url not in str(excinfo.value)


class _RefusingKms:
    """A KMS client whose Sign fails as AWS's does (moto's server enforces neither IAM nor a
    key's disabled state for Sign, so these refusals are AWS's answers, replayed)."""

    def __init__(self, code: str, status: int) -> None:
        self._code, self._status = code, status

    async def sign(self, **_: Any) -> dict[str, Any]:
        raise ClientError(
            {
                "Error": {"Code": self._code, "Message": f"refused at {ENDPOINT_IN_MESSAGE}"},
                "ResponseMetadata": {"HTTPStatusCode": self._status},
            },
            "Sign",
        )


ENDPOINT_IN_MESSAGE = "https://user:secret@kms.example"


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("DisabledException", 400, ConfigurationError),
        ("AccessDeniedException", 400, ConfigurationError),
        ("KMSInvalidStateException", 400, ConfigurationError),
        ("ThrottlingException", 400, TransientError),
        ("KMSInternalException", 500, TransientError),
        ("ValidationException", 400, SluiceError),
    ],
)
async def test_kms_sign_refusals_are_translated_without_details(
    code: str, status: int, expected: type[SluiceError]
) -> None:
    refusing = _RefusingKms(code, status)
    signer = KmsSigner(
        key_id="key-1", address=DEV.address, open_client=lambda: contextlib.nullcontext(refusing)
    )

    with pytest.raises(expected, match=code) as excinfo:
        await signer.sign(transaction())

    assert type(excinfo.value) is expected
    assert "key-1" in str(excinfo.value)
    assert ENDPOINT_IN_MESSAGE not in str(excinfo.value)
    assert excinfo.value.__suppress_context__


async def test_an_unreachable_kms_is_a_transient_error(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = KmsSigner.from_key_id(create_kms_key())
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    try:
        with pytest.raises(TransientError, match="KMS Sign") as excinfo:
            await signer.sign(transaction())
    finally:
        await signer.close()

    assert "127.0.0.1:1" not in str(excinfo.value)


def test_a_kms_signer_is_not_picklable(aws: MotoServer) -> None:
    signer = KmsSigner.from_key_id(create_kms_key())

    with pytest.raises(TypeError):
        pickle.dumps(signer)


# ── Configuration ─────────────────────────────────────────────────────────────────────────────


def network(**hot_wallet: Any) -> NetworkConfig:
    return NetworkConfig.model_validate(
        {"chain_id": 31337, "rpc_urls": ["http://127.0.0.1:8545"], **hot_wallet}
    )


def test_load_signers_builds_each_kind_of_signer(
    aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLUICE_KEYSTORE_PASSPHRASE", raising=False)
    keystore = tmp_path / "more.json"
    create_keystore(keystore, "pass", private_key=OTHER.private_key, kdf="pbkdf2", iterations=2)
    settings = Settings(keystore_passphrase=SecretStr("pass"))
    secret_id = create_secret(DEV.private_key)
    key_id = create_kms_key()

    by_secret = load_signers(
        network(hot_wallet_secret_id=secret_id, more_hot_wallet_keystores=[str(keystore)]),
        settings,
    )
    by_kms = load_signers(network(hot_wallet_kms_key_id=key_id), Settings())

    assert [type(s) for s in by_secret] == [SecretsManagerSigner, KeystoreSigner]
    assert [s.address for s in by_secret] == [DEV.address, OTHER.address]
    assert len(by_kms) == 1
    assert isinstance(by_kms[0], KmsSigner)
    with pytest.raises(ConfigurationError, match="SLUICE_KEYSTORE_PASSPHRASE"):
        load_signers(
            network(hot_wallet_kms_key_id=key_id, more_hot_wallet_keystores=[str(keystore)]),
            Settings(),
        )
    with pytest.raises(ConfigurationError, match="configured twice"):
        load_signers(
            network(hot_wallet_secret_id=create_secret(OTHER.private_key)).model_copy(
                update={"more_hot_wallet_keystores": [keystore]}
            ),
            settings,
        )
