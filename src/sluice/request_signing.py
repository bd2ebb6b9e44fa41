"""Signed API requests: Ed25519 over a canonical form of the request.

An API key made with a signing public key must sign every request with the matching private
key, which only the caller holds: Sluice stores the public key alone, so neither a leaked bearer
token nor a copy of Sluice's database is enough to make a request with that key.

The signed message (`canonical_request`) is::

    <timestamp> "\\n" <nonce> "\\n" <METHOD> "\\n" <target> "\\n" <body>

where ``timestamp`` is the ``X-Sluice-Timestamp`` header (Unix seconds, decimal), ``nonce`` the
``X-Sluice-Nonce`` header (16-64 of ``A-Z a-z 0-9 _ -``, fresh for every request: Ed25519 is
deterministic, so without it two identical requests in one second would carry one signature and
the second would be refused as a replay), ``METHOD`` the
method in capitals, ``target`` the path and query exactly as sent (percent-encoding untouched),
and ``body`` the raw body bytes (empty for a GET). The signature goes in ``X-Sluice-Signature``
as base64 of the 64 signature bytes (RFC 8032 Ed25519). docs/api.md, "Signed requests", is the
specification for clients; the SDK (``sluice_client``) and `sign_request` implement it.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

#: Header carrying the request's Unix time in seconds.
TIMESTAMP_HEADER = "X-Sluice-Timestamp"
#: Header carrying a value unique to the request (random), signed with it.
NONCE_HEADER = "X-Sluice-Nonce"
#: What a nonce may be: 16-64 URL-safe characters (`secrets.token_urlsafe(16)` makes 22).
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
#: Header carrying the base64 Ed25519 signature of `canonical_request`.
SIGNATURE_HEADER = "X-Sluice-Signature"

_RAW_KEY_BYTES = 32
_SIGNATURE_BYTES = 64
_HEX_KEY = re.compile(r"^(?:0x)?[0-9a-fA-F]{64}$")


class SigningKeyError(ValueError):
    """A public key that is not an Ed25519 public key in a form Sluice reads."""


def canonical_request(
    *, timestamp: str, nonce: str, method: str, target: bytes, body: bytes
) -> bytes:
    """The bytes a caller signs and the server verifies (see the module docstring)."""
    return f"{timestamp}\n{nonce}\n{method.upper()}\n".encode() + target + b"\n" + body


def parse_public_key(text: str) -> bytes:
    """The 32 raw bytes of an Ed25519 public key given as PEM, base64 or hex.

    PEM is what ``openssl pkey -pubout`` writes (SubjectPublicKeyInfo); base64 and hex are the
    raw 32 bytes (what the SDK's `SigningKey.public_key_base64` prints).

    Raises:
        SigningKeyError: Not an Ed25519 public key in one of those forms.
    """
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = load_pem_public_key(text.encode())
        except ValueError:
            raise SigningKeyError("not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError("the PEM key is not an Ed25519 key")
        return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if _HEX_KEY.match(text):
        return bytes.fromhex(text.removeprefix("0x"))
    raw = _b64decode(text)
    if raw is None or len(raw) != _RAW_KEY_BYTES:
        raise SigningKeyError(
            "an Ed25519 public key is PEM, or its 32 bytes in base64 or hex"
            " (private keys are never accepted)"
        )
    return raw


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def decode_signature(text: str) -> bytes | None:
    """The 64 signature bytes of a header value (base64, standard or URL-safe), or None."""
    raw = _b64decode(text.strip())
    return raw if raw is not None and len(raw) == _SIGNATURE_BYTES else None


def sign_request(
    private_key: Ed25519PrivateKey,
    *,
    timestamp: str,
    nonce: str,
    method: str,
    target: bytes,
    body: bytes,
) -> str:
    """A request's ``X-Sluice-Signature`` value, as a client computes it (reference, tests)."""
    message = canonical_request(
        timestamp=timestamp, nonce=nonce, method=method, target=target, body=body
    )
    return base64.b64encode(private_key.sign(message)).decode("ascii")


def public_key_text(private_key: Ed25519PrivateKey) -> str:
    """The base64 form of a private key's public key, as `parse_public_key` reads it."""
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    if not text or len(text) > 128:
        return None
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
