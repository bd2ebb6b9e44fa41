"""Request signing: the key pair, the signed bytes, and what the auth flow puts on the wire."""

from __future__ import annotations

import base64
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_public_key,
)

from sluice_client import SigningKey, SluiceAuth, SluiceClient
from sluice_client.signing import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    canonical_request,
)

# RFC 8032 section 7.1, TEST 1.
RFC_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
    "1cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
# Computed once with `cryptography` from RFC_SECRET; Ed25519 is deterministic.
POST_SIGNATURE = (
    "zbsCb9J1l/HpxgMn92wmELgnQJ2ei2N2SQTgI4Fx8giSL9Jskh3rj4qcDDMFHqcqJWdhekDAYdFXYxuBRDPbCw=="
)
GET_SIGNATURE = (
    "Y+KVFml4sNCU6hsS/y8+Dp4o+bCInuaNB26CyRP3IGSNBJYU4bmvabrbS16tuC/ynf1y8PeMHOx3DJ1UDPWEAQ=="
)
NONCE = "n0nce-0123456789ab"
FIXED_TIME = 1_796_200_000.25


@pytest.fixture
def rfc_key() -> SigningKey:
    return SigningKey.from_private_bytes(RFC_SECRET)


def _verify(public_key: bytes, request: httpx.Request) -> None:
    """Check a sent request's signature as the server does, from what went on the wire."""
    message = canonical_request(
        timestamp=request.headers[TIMESTAMP_HEADER],
        nonce=request.headers[NONCE_HEADER],
        method=request.method,
        target=request.url.raw_path,
        body=request.content,
    )
    signature = base64.b64decode(request.headers[SIGNATURE_HEADER])
    Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)


def test_the_signed_message_is_timestamp_nonce_method_target_and_body_on_lines() -> None:
    message = canonical_request(
        timestamp="1796200000",
        nonce=NONCE,
        method="post",
        target=b"/v1/withdrawals?a=%2B",
        body=b'{"x":1}',
    )
    assert message == b'1796200000\nn0nce-0123456789ab\nPOST\n/v1/withdrawals?a=%2B\n{"x":1}'


def test_a_key_from_the_rfc_8032_seed_has_its_public_key_and_signature(
    rfc_key: SigningKey,
) -> None:
    assert rfc_key.public_key_bytes() == RFC_PUBLIC
    assert base64.b64decode(rfc_key.public_key_base64()) == RFC_PUBLIC
    assert rfc_key.sign(b"") == RFC_SIGNATURE


def test_request_signatures_match_known_vectors(rfc_key: SigningKey) -> None:
    body = b'{"userId":"user-42","amount":"1.5"}'
    post = rfc_key.sign_request(
        timestamp="1796200000", nonce=NONCE, method="post", target=b"/v1/withdrawals", body=body
    )
    target = b"/v1/withdrawals?userId=user-42&updatedSince=2026-12-02T10%3A00%3A00%2B01%3A00"
    get = rfc_key.sign_request(
        timestamp="1796200000", nonce=NONCE, method="GET", target=target, body=b""
    )
    assert (post, get) == (POST_SIGNATURE, GET_SIGNATURE)


def test_signatures_match_the_servers_reference_implementation(rfc_key: SigningKey) -> None:
    reference = pytest.importorskip("sluice.request_signing")
    private = Ed25519PrivateKey.from_private_bytes(RFC_SECRET)
    ours = rfc_key.sign_request(
        timestamp="1796200000", nonce=NONCE, method="POST", target=b"/v1/x?y=1", body=b"{}"
    )
    theirs = reference.sign_request(
        private,
        timestamp="1796200000",
        nonce=NONCE,
        method="POST",
        target=b"/v1/x?y=1",
        body=b"{}",
    )
    assert ours == theirs
    assert reference.parse_public_key(rfc_key.public_key_base64()) == RFC_PUBLIC
    assert reference.parse_public_key(rfc_key.public_key_pem()) == RFC_PUBLIC


def test_a_saved_key_is_private_to_its_owner_and_loads_back(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "caller.pem"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.load(path).public_key_bytes() == key.public_key_bytes()


def test_saving_over_a_file_needs_overwrite_and_narrows_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "caller.pem"
    path.write_text("old")
    path.chmod(0o644)
    with pytest.raises(FileExistsError):
        SigningKey.generate().save(path)
    key = SigningKey.generate()
    key.save(path, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.load(path).public_key_base64() == key.public_key_base64()


def test_an_encrypted_key_needs_its_password(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "caller.pem"
    key.save(path, password=b"correct horse")
    assert SigningKey.load(path, password=b"correct horse").public_key_bytes() == (
        key.public_key_bytes()
    )
    with pytest.raises(ValueError, match=r"(?i)password"):
        SigningKey.load(path)
    with pytest.raises(ValueError, match=r"decrypt|password"):
        SigningKey.load(path, password=b"wrong")


def test_an_openssl_style_pkcs8_key_loads() -> None:
    private = Ed25519PrivateKey.from_private_bytes(RFC_SECRET)
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    assert SigningKey.from_pem(pem.decode()).public_key_bytes() == RFC_PUBLIC


def test_a_key_of_another_algorithm_is_refused() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    with pytest.raises(ValueError, match="not an Ed25519"):
        SigningKey.from_pem(pem)


def test_the_public_key_pem_is_the_same_key(rfc_key: SigningKey) -> None:
    public = load_pem_public_key(rfc_key.public_key_pem().encode())
    assert isinstance(public, Ed25519PublicKey)
    assert public.public_bytes(Encoding.Raw, PublicFormat.Raw) == RFC_PUBLIC


def test_the_repr_shows_the_public_key_only(rfc_key: SigningKey) -> None:
    assert repr(rfc_key) == f"SigningKey(public_key={rfc_key.public_key_base64()!r})"


def test_the_client_signs_the_target_and_body_exactly_as_sent(rfc_key: SigningKey) -> None:
    sent: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"items": [], "nextCursor": None})

    with SluiceClient(
        "http://sluice.test",
        "sluice_id_secret",
        signing_key=rfc_key,
        transport=httpx.MockTransport(server),
        clock=lambda: FIXED_TIME,
    ) as client:
        since = datetime(2026, 12, 2, 11, 0, tzinfo=timezone(timedelta(hours=1)))
        client.list_withdrawals(user_id="user:42@x", updated_since=since, cursor="a+b/c=")
    (request,) = sent
    assert request.headers["Authorization"] == "Bearer sluice_id_secret"
    assert request.headers[TIMESTAMP_HEADER] == "1796200000"
    # The query as httpx encoded it ('+' is %2B, ':' is %3A) is what was signed.
    assert b"updatedSince=2026-12-02T10%3A00%3A00Z" in request.url.raw_path
    assert b"cursor=a%2Bb%2Fc%3D" in request.url.raw_path
    _verify(RFC_PUBLIC, request)
    assert since.astimezone(UTC).hour == 10


def test_a_signed_post_covers_its_body(rfc_key: SigningKey) -> None:
    sent: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={"reference": "r-1", "credited": True})

    with SluiceClient(
        "http://sluice.test",
        "sluice_id_secret",
        signing_key=rfc_key,
        transport=httpx.MockTransport(server),
    ) as client:
        client.credit_balance(user_id="u-1", network="anvil", amount="1.5", reference="r-1")
    (request,) = sent
    assert request.content.startswith(b'{"userId":"u-1"')
    _verify(RFC_PUBLIC, request)
    tampered = canonical_request(
        timestamp=request.headers[TIMESTAMP_HEADER],
        nonce=request.headers[NONCE_HEADER],
        method="POST",
        target=request.url.raw_path,
        body=request.content.replace(b"1.5", b"9.5"),
    )
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(RFC_PUBLIC).verify(
            base64.b64decode(request.headers[SIGNATURE_HEADER]), tampered
        )


def test_without_a_signing_key_only_the_bearer_token_is_sent() -> None:
    sent: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"status": "ok"})

    with SluiceClient(
        "http://sluice.test", "sluice_id_secret", transport=httpx.MockTransport(server)
    ) as client:
        client.get_health()
    assert sent[0].headers["Authorization"] == "Bearer sluice_id_secret"
    assert TIMESTAMP_HEADER not in sent[0].headers
    assert NONCE_HEADER not in sent[0].headers
    assert SIGNATURE_HEADER not in sent[0].headers


def test_two_identical_signed_requests_never_carry_the_same_signature() -> None:
    key = SigningKey.generate()
    sent: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"status": "ok"})

    # One fixed second: only the nonce tells the three apart, and none waits for a new second.
    auth = SluiceAuth("sluice_id_secret", key, clock=lambda: FIXED_TIME)
    with httpx.Client(auth=auth, transport=httpx.MockTransport(server)) as http:
        for _ in range(3):
            http.get("http://sluice.test/health")
    signatures = {r.headers[SIGNATURE_HEADER] for r in sent}
    nonces = {r.headers[NONCE_HEADER] for r in sent}
    assert len(signatures) == len(nonces) == 3
    assert {r.headers[TIMESTAMP_HEADER] for r in sent} == {"1796200000"}
    for request in sent:
        _verify(key.public_key_bytes(), request)
