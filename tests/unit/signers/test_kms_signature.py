"""The pure parts of `KmsSigner`: a DER public key's address, DER signatures, low s, recovery id.

Vectors: Anvil's first dev key (its address is well known), and signatures made locally with
eth_keys (deterministic, RFC 6979) and cryptography (random k, DER, any s), over fixed digests.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_keys.datatypes import PrivateKey, Signature
from eth_utils.crypto import keccak

from sluice.devnet.anvil import DEV_ACCOUNTS
from sluice.signers.kms import (
    SECP256K1_N,
    address_from_public_key_der,
    decode_der_signature,
    ethereum_signature,
    low_s,
    recovery_id,
)

DEV = DEV_ACCOUNTS[0]
DIGESTS = [keccak(text=f"transaction {n}") for n in range(16)]


def der_public_key(private_key_hex: str) -> bytes:
    key = ec.derive_private_key(int(private_key_hex, 16), ec.SECP256K1())
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def test_the_address_of_a_der_public_key() -> None:
    for account in DEV_ACCOUNTS:
        assert address_from_public_key_der(der_public_key(account.private_key)) == account.address


def test_the_address_is_checksummed() -> None:
    address = address_from_public_key_der(der_public_key(DEV.private_key))

    assert address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30\x03\x02\x01\x01",
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
    ],
    ids=["empty", "not-spki", "p-256"],
)
def test_other_public_keys_are_refused(der: bytes) -> None:
    with pytest.raises(ValueError, match=r"secp256k1|SubjectPublicKeyInfo"):
        address_from_public_key_der(der)


def test_decode_der_signature() -> None:
    r, s = 0x1234, SECP256K1_N - 1

    assert decode_der_signature(encode_dss_signature(r, s)) == (r, s)


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30\x00",
        b"\x30\x06\x02\x01\x01\x02\x01",  # truncated
        encode_dss_signature(0, 1),
        encode_dss_signature(1, SECP256K1_N),
        encode_dss_signature(SECP256K1_N + 5, 1),
    ],
    ids=["empty", "empty-sequence", "truncated", "r-zero", "s-is-n", "r-above-n"],
)
def test_bad_der_signatures_are_refused(der: bytes) -> None:
    with pytest.raises(ValueError, match=r"DER|range"):
        decode_der_signature(der)


def test_low_s() -> None:
    half = SECP256K1_N // 2

    assert low_s(1) == 1
    assert low_s(half) == half
    assert low_s(half + 1) == SECP256K1_N - (half + 1) == half
    assert low_s(SECP256K1_N - 1) == 1


def test_recovery_id_matches_what_eth_keys_computes() -> None:
    key = PrivateKey(bytes.fromhex(DEV.private_key[2:]))
    seen = set()
    for digest in DIGESTS:
        expected = key.sign_msg_hash(digest)  # low s, v ∈ {0, 1}

        v = recovery_id(digest, expected.r, expected.s, DEV.address)

        assert v == expected.v
        seen.add(v)
    assert seen == {0, 1}  # both branches, over these fixed digests


def test_a_signature_by_another_key_has_no_recovery_id() -> None:
    other = PrivateKey(bytes.fromhex(DEV_ACCOUNTS[1].private_key[2:]))
    signature = other.sign_msg_hash(DIGESTS[0])

    with pytest.raises(ValueError, match="does not recover"):
        recovery_id(DIGESTS[0], signature.r, signature.s, DEV.address)
    with pytest.raises(ValueError, match="does not recover"):  # right key, other digest
        recovery_id(DIGESTS[1], signature.r, signature.s, DEV_ACCOUNTS[1].address)


def test_ethereum_signature_normalises_a_high_s_and_finds_v() -> None:
    key = PrivateKey(bytes.fromhex(DEV.private_key[2:]))
    for digest in DIGESTS:
        expected = key.sign_msg_hash(digest)
        high = encode_dss_signature(expected.r, SECP256K1_N - expected.s)  # as KMS may answer

        assert ethereum_signature(digest, high, DEV.address) == expected.vrs
        assert ethereum_signature(
            digest, encode_dss_signature(expected.r, expected.s), DEV.address
        ) == (expected.vrs)


def test_ethereum_signature_of_random_k_der_signatures() -> None:
    """What KMS does: a DER (r, s) with random k and either s; the result is Ethereum's form."""
    private = ec.derive_private_key(int(DEV.private_key, 16), ec.SECP256K1())
    public_key = PrivateKey(bytes.fromhex(DEV.private_key[2:])).public_key
    for digest in DIGESTS:
        der = private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        kms_r, kms_s = decode_dss_signature(der)

        v, r, s = ethereum_signature(digest, der, DEV.address)

        assert r == kms_r
        assert s in {kms_s, SECP256K1_N - kms_s}
        assert s <= SECP256K1_N // 2
        assert Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest) == public_key
