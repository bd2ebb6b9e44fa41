"""HTTP hardening: security headers, CORS closed unless configured, and TLS served by Sluice."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sluice.devnet.anvil import AnvilProcess
from sluice.testing import secret_scan
from sluice.testing.harness import RunningSluice, running_sluice

EVIL = "https://evil.example"


async def test_every_answer_carries_the_security_headers(
    sluice_without_workers: RunningSluice,
) -> None:
    async with sluice_without_workers.client() as client:
        ok = await client.get("/v1/withdrawals")
        problem = await client.get("/v1/withdrawals/no-such-id")
        docs = await client.get("/docs")
    for response in (ok, problem):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "strict-transport-security" not in response.headers, "only when serving TLS"
    assert docs.status_code == 200
    policy = docs.headers["content-security-policy"]
    assert "script-src 'self'" in policy, "the docs page runs only Sluice's own copy of scripts"
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


async def test_the_docs_page_loads_everything_from_sluice_itself(
    sluice_without_workers: RunningSluice,
) -> None:
    """Offline, behind an egress policy, `/docs` still works: nothing comes from a CDN."""
    async with sluice_without_workers.client() as client:
        page = await client.get("/docs")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        loaded = {path: await client.get(path) for path in assets}
        document = await client.get("/openapi.json")
    assert page.status_code == 200
    assert "<script>" not in page.text, "no inline script (the policy would refuse it)"
    assert not [a for a in assets if "//" in a], f"an asset from elsewhere: {assets}"
    assert {"/static/swagger-ui/swagger-ui-bundle.js", "/static/docs.js"} <= set(assets)
    for path, answer in loaded.items():
        assert answer.status_code == 200, path
    assert "SwaggerUIBundle" in loaded["/static/swagger-ui/swagger-ui-bundle.js"].text
    assert '"/openapi.json"' in loaded["/static/docs.js"].text
    assert document.json()["info"]["title"] == "Sluice"


async def test_cors_is_closed_by_default(sluice_without_workers: RunningSluice) -> None:
    async with sluice_without_workers.client() as client:
        read = await client.get("/v1/withdrawals", headers={"Origin": EVIL})
        preflight = await client.options(
            "/v1/withdrawals",
            headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
        )
    assert read.status_code == 200
    assert "access-control-allow-origin" not in read.headers
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code == 405


async def test_configured_origins_and_only_those_may_call_from_a_browser(
    anvil: AnvilProcess, tmp_path: Path, database_url: str
) -> None:
    ops = "https://ops.example"
    async with (
        running_sluice(
            anvil, tmp_path, workers=False, database_url=database_url, cors_origins=[ops]
        ) as instance,
        instance.client() as client,
    ):
        allowed = await client.options(
            "/v1/withdrawals",
            headers={
                "Origin": ops,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
            },
        )
        refused = await client.get("/v1/withdrawals", headers={"Origin": EVIL})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ops
    assert "access-control-allow-origin" not in refused.headers


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_sluice_serves_tls_when_given_a_certificate(
    anvil: AnvilProcess, tmp_path: Path, database_url: str
) -> None:
    cert, key = _self_signed(tmp_path)
    async with running_sluice(
        anvil,
        tmp_path / "data",
        workers=False,
        database_url=database_url,
        tls_certfile=cert,
        tls_keyfile=key,
    ) as instance:
        https = instance.base_url.replace("http://", "https://")
        context = ssl.create_default_context(cafile=str(cert))
        headers = {"Authorization": f"Bearer {instance.api_key}"}
        async with httpx.AsyncClient(base_url=https, verify=context, headers=headers) as client:
            response = await client.get("/v1/withdrawals")
        async with httpx.AsyncClient(base_url=instance.base_url) as plain:
            try:
                await plain.get("/health")
            except httpx.HTTPError:
                refused_plain = True
            else:
                refused_plain = False
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert refused_plain, "plain HTTP is not served on the TLS port"


async def test_the_openapi_document_and_the_docs_carry_no_secret(
    sluice_without_workers: RunningSluice,
) -> None:
    async with sluice_without_workers.client() as client:  # every answer is scanned
        document = await client.get("/openapi.json")
        docs = await client.get("/docs")
    assert document.status_code == docs.status_code == 200
    assert secret_scan.find(document.text + docs.text) == []
    assert secret_scan.find(sluice_without_workers.api_key) != [], "the scan knows the key"
