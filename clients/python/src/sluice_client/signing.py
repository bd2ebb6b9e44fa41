"""Signed requests: an Ed25519 key pair the caller holds, and the httpx auth that uses it.

An API key made with a public key (``sluice apikey create --public-key``) must sign every
request with the matching private key, so a leaked bearer token alone is refused. The signed
message is::

    <timestamp> "\\n" <nonce> "\\n" <METHOD> "\\n" <target> "\\n" <body>

``timestamp`` is Unix seconds (sent as ``X-Sluice-Timestamp``), ``nonce`` random characters new
for every request (``X-Sluice-Nonce``: Ed25519 is deterministic, so two identical requests in one
second would otherwise carry one signature, and Sluice refuses the second as a replay),
``target`` the path and query
exactly as sent on the wire, ``body`` the raw body bytes. The signature is sent as
``X-Sluice-Signature``, base64 of the 64 signature bytes. `SluiceAuth` signs inside httpx's
auth flow, after httpx has encoded the URL and the body, so what is signed is what is sent.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from collections.abc import AsyncGenerator, Callable, Generator
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

__all__ = [
    "NONCE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SigningKey",
    "SluiceAuth",
    "canonical_request",
]

#: Header carrying the request's Unix time in seconds.
TIMESTAMP_HEADER = "X-Sluice-Timestamp"
#: Header carrying the request's nonce (16-64 of A-Z a-z 0-9 _ -).
NONCE_HEADER = "X-Sluice-Nonce"
#: Header carrying the base64 Ed25519 signature of `canonical_request`.
SIGNATURE_HEADER = "X-Sluice-Signature"


def canonical_request(
    *, timestamp: str, nonce: str, method: str, target: bytes, body: bytes
) -> bytes:
    """The bytes that are signed for one request (see the module docstring)."""
    return f"{timestamp}\n{nonce}\n{method.upper()}\n".encode() + target + b"\n" + body


def new_nonce() -> str:
    """A fresh nonce: 128 random bits, URL-safe base64 (22 characters)."""
    return secrets.token_urlsafe(16)


class SigningKey:
    """An Ed25519 private key that signs requests; only its public half is given to Sluice.

    Make one with `generate`, keep it with `save` (PEM, file mode 0600), read it back with
    `load`, and register `public_key_base64` with ``sluice apikey create --public-key``.
    """

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random key pair."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes | str, *, password: bytes | None = None) -> SigningKey:
        """A key from PEM (PKCS #8, what `save` and ``openssl genpkey -algorithm ed25519`` write).

        Raises:
            ValueError: Not a PEM private key, a wrong password, or not an Ed25519 key.
        """
        raw = data.encode("ascii") if isinstance(data, str) else data
        try:
            key = load_pem_private_key(raw, password=password)
        except TypeError as exc:  # a password given for a plain key, or none for an encrypted one
            raise ValueError(str(exc)) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"not an Ed25519 private key ({type(key).__name__})")
        return cls(key)

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> SigningKey:
        """A key from its 32 raw private bytes (RFC 8032 seed)."""
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, password: bytes | None = None) -> SigningKey:
        """Read a PEM private key file (see `from_pem`)."""
        return cls.from_pem(Path(path).read_bytes(), password=password)

    def to_pem(self, *, password: bytes | None = None) -> bytes:
        """The private key as PKCS #8 PEM, encrypted with ``password`` if one is given."""
        encryption = NoEncryption() if password is None else BestAvailableEncryption(password)
        return self._key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        password: bytes | None = None,
        overwrite: bool = False,
    ) -> None:
        """Write the private key as PEM to a new file readable by its owner only (mode 0600).

        Raises:
            FileExistsError: The file exists and ``overwrite`` is false.
        """
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        descriptor = os.open(path, flags, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            # An existing file keeps its mode through O_TRUNC: narrow it as well.
            os.fchmod(file.fileno(), 0o600)
            file.write(self.to_pem(password=password))

    def public_key_bytes(self) -> bytes:
        """The 32 raw bytes of the public key."""
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def public_key_base64(self) -> str:
        """The public key as ``sluice apikey create --public-key`` takes it (base64 of 32 bytes)."""
        return base64.b64encode(self.public_key_bytes()).decode("ascii")

    def public_key_pem(self) -> str:
        """The public key as PEM (SubjectPublicKeyInfo), also accepted by ``--public-key``."""
        pem = self._key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        return pem.decode("ascii")

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message)

    def sign_request(
        self, *, timestamp: str, nonce: str, method: str, target: bytes, body: bytes
    ) -> str:
        """A request's ``X-Sluice-Signature`` value."""
        message = canonical_request(
            timestamp=timestamp, nonce=nonce, method=method, target=target, body=body
        )
        return base64.b64encode(self.sign(message)).decode("ascii")

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key_base64()!r})"


class SluiceAuth(httpx.Auth):
    """Sends the bearer token, and signs each request when a `SigningKey` is given.

    Args:
        api_key: The ``sluice_<id>_<secret>`` token.
        signing_key: The private key whose public half the API key was made with, if any.
        clock: Unix time in seconds (tests pass a fixed one).
        nonce: Makes each request's nonce (tests pass a fixed one).
    """

    requires_request_body = True

    def __init__(
        self,
        api_key: str,
        signing_key: SigningKey | None = None,
        *,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        self._authorization = f"Bearer {api_key}"
        self._signing_key = signing_key
        self._clock = clock
        self._nonce = nonce

    def _prepare(self, request: httpx.Request) -> None:
        """Set the authorization and, for a signing key, the signature headers."""
        request.headers["Authorization"] = self._authorization
        if self._signing_key is None:
            return
        timestamp, nonce = str(int(self._clock())), self._nonce()
        request.headers[TIMESTAMP_HEADER] = timestamp
        request.headers[NONCE_HEADER] = nonce
        # What httpx writes on the request line: the path and query, percent-encoded as sent.
        request.headers[SIGNATURE_HEADER] = self._signing_key.sign_request(
            timestamp=timestamp,
            nonce=nonce,
            method=request.method,
            target=request.url.raw_path,
            body=request.content,
        )

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()
        self._prepare(request)
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        self._prepare(request)
        yield request
