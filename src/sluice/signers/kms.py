"""A `Signer` over an AWS KMS asymmetric key (``ECC_SECG_P256K1``, ``SIGN_VERIFY``).

The private key never leaves KMS. At start, GetPublicKey gives the key's DER
``SubjectPublicKeyInfo``; its uncompressed secp256k1 point gives the Ethereum address (keccak of
the 64-byte point, last 20 bytes, checksummed). The key id in that answer (the key's ARN) is
what every Sign names afterwards: an alias moved to another key later does not change the wallet.

To sign, Sluice builds the same transaction as the other signers (type 2, or type 0 on a legacy
network), hashes it (the signing hash: keccak of ``0x02 || rlp(fields)``, or for a legacy one of
EIP-155's ``rlp([fields..., chainId, 0, 0])``) and asks KMS to sign that 32-byte digest as is
(``MessageType=DIGEST``, ``ECDSA_SHA_256``: with DIGEST, KMS does not hash again, so the SHA-256
in the algorithm's name plays no part). KMS answers a DER ``ECDSA-Sig-Value`` (r, s) with no
recovery id and with s anywhere in [1, n-1]. Sluice then

1. decodes r and s from DER;
2. takes the low s (s > n/2 → n - s), which Ethereum requires (EIP-2);
3. finds the recovery id v ∈ {0, 1}: the one whose recovered public key has the wallet's address
   (none matching means KMS signed something else, or with another key: refused);
4. encodes the signed transaction with (v, r, s): a type-2 one carries v as its y parity, a
   legacy one as EIP-155's ``chainId * 2 + 35 + v``
   (`sluice.signers.eip1559.signed_serialization`).

GetPublicKey is one blocking botocore call at start, before any work. Sign (tens of milliseconds
in-region, bounded by the client's timeouts in `sluice.signers.aws`) is awaited on an aiobotocore
client, opened on the first signature in the event loop that signs and released by `close`: the
event loop goes on while the wallet's nonce counter is locked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, NoReturn

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)
from eth_keys.datatypes import Signature
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from sluice.domain.addresses import Address
from sluice.domain.transaction import SignedTransaction, UnsignedTransaction
from sluice.errors import ConfigurationError
from sluice.ports import SigningContext
from sluice.signers.aws import (
    async_aws_client,
    aws_client,
    aws_errors,
    describe_failure,
    translate,
)
from sluice.signers.eip1559 import signed_serialization, signed_transaction, signing_hash

__all__ = [
    "SECP256K1_N",
    "KmsSigner",
    "address_from_public_key_der",
    "decode_der_signature",
    "ethereum_signature",
    "low_s",
    "recovery_id",
]

#: The order of secp256k1's group.
SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

KEY_SPEC: Final = "ECC_SECG_P256K1"
KEY_USAGE: Final = "SIGN_VERIFY"
SIGNING_ALGORITHM: Final = "ECDSA_SHA_256"


# ── The pure parts ────────────────────────────────────────────────────────────────────────────


def address_from_public_key_der(der: bytes) -> Address:
    """The Ethereum address of a DER ``SubjectPublicKeyInfo`` holding a secp256k1 key.

    Raises:
        ValueError: Not DER, not an EC key, or not on secp256k1.
    """
    try:
        key = load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not a DER SubjectPublicKeyInfo of a supported key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256K1):
        raise ValueError("not a secp256k1 public key")
    point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)  # 0x04 || X || Y
    return Address(to_checksum_address(keccak(point[1:])[-20:]))


def decode_der_signature(der: bytes) -> tuple[int, int]:
    """(r, s) of a DER ``ECDSA-Sig-Value``, each checked to be in [1, n-1].

    Raises:
        ValueError: Not such a signature.
    """
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        raise ValueError("not a DER ECDSA signature") from None
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise ValueError("the signature's r or s is out of range for secp256k1")
    return r, s


def low_s(s: int) -> int:
    """s in the lower half of the group order (EIP-2): (r, n - s) is the same signature."""
    return SECP256K1_N - s if s > SECP256K1_N // 2 else s


def recovery_id(digest: bytes, r: int, s: int, address: str) -> int:
    """The v ∈ {0, 1} with which (r, s) over ``digest`` recovers the key of ``address``.

    Raises:
        ValueError: Neither does: the signature is not by that address's key over that digest.
    """
    wanted = address.lower()
    for v in (0, 1):
        try:
            public_key = Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest)
        except BadSignature:  # no point on the curve has this r for this v
            continue
        if public_key.to_checksum_address().lower() == wanted:
            return v
    raise ValueError("the signature does not recover to the expected address")


def ethereum_signature(digest: bytes, der_signature: bytes, address: str) -> tuple[int, int, int]:
    """(y parity, r, s) from a DER signature over ``digest`` by ``address``.

    Raises:
        ValueError: The DER is malformed, or the signature is not by that address over that digest.
    """
    r, s = decode_der_signature(der_signature)
    s = low_s(s)
    return recovery_id(digest, r, s, address), r, s


# ── The adapter ───────────────────────────────────────────────────────────────────────────────


#: Opens a KMS client for Sign: an async context manager whose value has an async ``sign``.
OpenClient = Callable[[], AbstractAsyncContextManager[Any]]


def _open_kms() -> AbstractAsyncContextManager[Any]:
    return async_aws_client("kms")


class KmsSigner:
    """Signs transactions (type 2, or legacy) with an AWS KMS secp256k1 key that never leaves KMS
    (implements `sluice.ports.Signer`). It holds the key's id, its address and, once it has
    signed, an aiobotocore client (`close` releases it)."""

    __slots__ = ("_address", "_client", "_clients", "_key_id", "_open_client", "_opening")

    def __init__(
        self, *, key_id: str, address: Address, open_client: OpenClient | None = None
    ) -> None:
        """``open_client``: opens the client that signs; by default an aiobotocore KMS client
        from the standard AWS environment (`sluice.signers.aws.async_aws_client`)."""
        self._key_id = key_id
        self._address = address
        self._open_client = open_client or _open_kms
        self._client: Any = None
        self._clients = contextlib.AsyncExitStack()
        self._opening = asyncio.Lock()

    @classmethod
    def from_key_id(
        cls, key_id: str, *, client: Any = None, open_client: OpenClient | None = None
    ) -> KmsSigner:
        """Read the key's public key and derive its address (a blocking call, at start).

        ``key_id``: a key id, key ARN, alias name (``alias/…``) or alias ARN. ``client``: a
        botocore KMS client for GetPublicKey; by default one from the standard AWS environment.
        ``open_client``: what signs afterwards (see `KmsSigner`).

        Raises:
            ConfigurationError: KMS cannot be reached or refuses, or the key is not an
                ``ECC_SECG_P256K1`` ``SIGN_VERIFY`` key that can sign with ``ECDSA_SHA_256``.
        """
        own = client is None
        if client is None:
            client = aws_client("kms")
        try:
            response = client.get_public_key(KeyId=key_id)
        except aws_errors() as exc:
            raise ConfigurationError(
                f"cannot read the public key of the KMS key {key_id}: {describe_failure(exc)}"
            ) from None
        finally:
            if own:
                client.close()  # its one call is made: signing has a client of its own
        # KeySpec is the current name; CustomerMasterKeySpec the deprecated one, which AWS still
        # returns too (and moto returns alone).
        spec = response.get("KeySpec") or response.get("CustomerMasterKeySpec")
        if spec != KEY_SPEC:
            _unusable(key_id, f"its key spec is {spec!r}, not {KEY_SPEC}")
        if response.get("KeyUsage") != KEY_USAGE:
            _unusable(key_id, f"its key usage is {response.get('KeyUsage')!r}, not {KEY_USAGE}")
        if SIGNING_ALGORITHM not in (response.get("SigningAlgorithms") or ()):
            _unusable(key_id, f"it cannot sign with {SIGNING_ALGORITHM}")
        try:
            address = address_from_public_key_der(bytes(response["PublicKey"]))
        except (KeyError, TypeError, ValueError) as exc:
            _unusable(key_id, f"its public key is unusable ({exc})")
        # The key GetPublicKey resolved (AWS answers its ARN, moto its bare id), never an alias.
        resolved = response.get("KeyId")
        resolved = resolved if isinstance(resolved, str) and resolved else key_id
        return cls(key_id=resolved, address=address, open_client=open_client)

    @property
    def address(self) -> Address:
        """The hot wallet's address, in checksum form."""
        return self._address

    @property
    def key_id(self) -> str:
        """The KMS key every signature is asked of: the one the configured id named at start (an
        alias is resolved then, so moving the alias later does not change the wallet)."""
        return self._key_id

    async def sign(
        self, transaction: UnsignedTransaction, context: SigningContext | None = None
    ) -> SignedTransaction:
        """Sign a transaction (type 2, or type 0 per its ``fee_model``) with one KMS Sign
        call, awaited.

        Raises:
            TransientError: KMS throttled, failed (5xx) or could not be reached; try again.
            ConfigurationError: Access denied, the key is disabled or gone, or KMS answered a
                signature that is not the key's over the transaction.
            SluiceError: KMS refused the request otherwise.
        """
        digest = signing_hash(transaction)
        try:
            client = await self._signing_client()
            response = await client.sign(
                KeyId=self._key_id,
                Message=digest,
                MessageType="DIGEST",
                SigningAlgorithm=SIGNING_ALGORITHM,
            )
        except aws_errors() as exc:
            raise translate(f"KMS Sign with {self._key_id}", exc) from None
        try:
            v, r, s = ethereum_signature(digest, bytes(response["Signature"]), self._address)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"KMS Sign with {self._key_id} answered an unusable signature: {exc}"
            ) from None
        return signed_transaction(signed_serialization(transaction, v, r, s))

    async def close(self) -> None:
        """Release the signing client's connections (a later signature opens a new one)."""
        async with self._opening:
            self._client = None
            await self._clients.aclose()

    async def _signing_client(self) -> Any:
        """The client that signs, opened once (in the event loop that signs)."""
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    self._client = await self._clients.enter_async_context(self._open_client())
        return self._client

    def __repr__(self) -> str:
        return f"KmsSigner(address={self._address!r}, key_id={self._key_id!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a KmsSigner holds a live AWS client: it cannot be pickled or copied")


def _unusable(key_id: str, why: str) -> NoReturn:
    raise ConfigurationError(f"the KMS key {key_id} cannot sign Ethereum transactions: {why}")
