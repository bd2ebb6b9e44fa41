"""Ed25519 request signatures: the canonical form, key forms accepted, verification."""

from __future__ import annotations

import base64
from typing import TypedDict

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from sluice.request_signing import (
    SigningKeyError,
    canonical_request,
    decode_signature,
    parse_public_key,
    public_key_text,
    sign_request,
    verify,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
RAW_PUBLIC = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class Head(TypedDict):
    timestamp: str
    nonce: str
    method: str
    target: bytes


class Request(Head):
    body: bytes


REQUEST: Head = {
    "timestamp": "1700000000",
    "nonce": "n0nce-0123456789ab",
    "method": "post",
    "target": b"/v1/withdrawals?a=%2F",
}


def test_the_canonical_request_is_timestamp_nonce_method_target_and_body_on_lines() -> None:
    message = canonical_request(**REQUEST, body=b'{"x": 1}')
    assert message == b'1700000000\nn0nce-0123456789ab\nPOST\n/v1/withdrawals?a=%2F\n{"x": 1}'


def test_a_signature_made_with_the_private_key_verifies_with_the_public_key() -> None:
    signature = sign_request(KEY, **REQUEST, body=b"{}")
    decoded = decode_signature(signature)
    assert decoded is not None
    assert verify(RAW_PUBLIC, canonical_request(**REQUEST, body=b"{}"), decoded)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({**REQUEST, "body": b'{"amount": "9"}'}, id="body"),
        pytest.param({**REQUEST, "target": b"/v1/withdrawals?a=/", "body": b"{}"}, id="target"),
        pytest.param({**REQUEST, "method": "GET", "body": b"{}"}, id="method"),
        pytest.param({**REQUEST, "timestamp": "1700000001", "body": b"{}"}, id="timestamp"),
        pytest.param({**REQUEST, "nonce": "another-nonce-0000", "body": b"{}"}, id="nonce"),
    ],
)
def test_a_signature_does_not_verify_for_any_other_request(other: Request) -> None:
    signature = decode_signature(sign_request(KEY, **REQUEST, body=b"{}"))
    assert signature is not None
    assert not verify(RAW_PUBLIC, canonical_request(**other), signature)


def test_a_signature_of_another_key_does_not_verify() -> None:
    other = Ed25519PrivateKey.generate()
    signature = decode_signature(sign_request(other, **REQUEST, body=b""))
    assert signature is not None
    assert not verify(RAW_PUBLIC, canonical_request(**REQUEST, body=b""), signature)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode(),
            id="pem",
        ),
        pytest.param(base64.b64encode(RAW_PUBLIC).decode(), id="base64"),
        pytest.param(base64.urlsafe_b64encode(RAW_PUBLIC).decode().rstrip("="), id="base64url"),
        pytest.param(RAW_PUBLIC.hex(), id="hex"),
        pytest.param("0x" + RAW_PUBLIC.hex().upper(), id="0x-hex"),
        pytest.param(f"  {public_key_text(KEY)}\n", id="padded-with-space"),
    ],
)
def test_a_public_key_is_read_from_pem_base64_or_hex(text: str) -> None:
    assert parse_public_key(text) == RAW_PUBLIC


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("not a key", id="garbage"),
        pytest.param(base64.b64encode(b"x" * 31).decode(), id="31-bytes"),
        pytest.param(
            KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(),
            id="a-private-key",
        ),
        pytest.param(
            X25519PrivateKey.generate()
            .public_key()
            .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            .decode(),
            id="another-algorithm",
        ),
        pytest.param("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----", id="bad-pem"),
    ],
)
def test_anything_but_an_ed25519_public_key_is_refused(text: str) -> None:
    with pytest.raises(SigningKeyError):
        parse_public_key(text)


@pytest.mark.parametrize(
    "text",
    ["", "zz", "a" * 200, base64.b64encode(b"s" * 63).decode(), "ab" * 64],
    ids=["empty", "not-base64", "too-long", "63-bytes", "hex-is-not-the-form"],
)
def test_a_signature_header_that_is_not_64_bytes_of_base64_is_refused(text: str) -> None:
    assert decode_signature(text) is None
