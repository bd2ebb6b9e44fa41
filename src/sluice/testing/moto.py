"""moto's own server (a fake AWS) on 127.0.0.1, in this process, for the AWS tests.

    with MotoServer() as server:
        env = aws_env(server.endpoint_url)  # set these in the test (monkeypatch.setenv)

`MotoServer` is moto's `ThreadedMotoServer` bound to 127.0.0.1 on a port the OS picks (port 0,
so no race for a free port), silent on start, and usable as a context manager. Nothing global is
touched: no environment variables, no patched clients. Tests point botocore at the server through
the standard variables `aws_env` returns. Its request log goes to werkzeug's logger (pytest
captures it; werkzeug adds a stderr handler only where logging has none).

An earlier version built the server from moto's parts, because `ThreadedMotoServer`'s answers
carried two ``Server`` headers (moto's and werkzeug's), which aiohttp 3.13.4 and 3.14 refuse
("Duplicate 'Server' header found", getmoto/moto#9930, aio-libs/aiohttp#12297). With the
pinned moto 5.2.5, werkzeug 3.1.9 and aiohttp 3.14.5 every answer has one ``Server`` header and
aiobotocore's SQS, KMS and Secrets Manager calls succeed (the queue and signer tests run on it).

Moto's state is process-wide: two servers in one process share their queues, and so does
`moto.mock_aws`. Tests keep apart by using unique queue names.

This module must not import pytest.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Self

from moto.server import ThreadedMotoServer

__all__ = ["TEST_CREDENTIALS", "MotoServer", "aws_env", "kms_sign_honouring_digests"]

_HOST: Final = "127.0.0.1"

#: Fake credentials moto accepts (it checks none). Not secrets.
TEST_CREDENTIALS: Final = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def aws_env(endpoint_url: str, *, region: str = "us-east-1") -> dict[str, str]:
    """The environment that points botocore at ``endpoint_url`` with fake credentials.

    ``AWS_ENDPOINT_URL_SQS`` is set too: botocore prefers a service's own variable to the global
    one, so one left in a developer's shell would otherwise send the tests to real AWS.
    """
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ENDPOINT_URL_SQS": endpoint_url,
        **TEST_CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
    }


class MotoServer:
    """Moto's `ThreadedMotoServer` on 127.0.0.1, for as long as the context lasts."""

    def __init__(self, *, port: int = 0) -> None:
        """Serve on ``port`` (0: any free port; `endpoint_url` tells which once started)."""
        self._port = port
        self._server: ThreadedMotoServer | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``; the server must be started."""
        if self._server is None:
            raise RuntimeError("the moto server is not running")
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """`aws_env` for this server."""
        return aws_env(self.endpoint_url)

    def start(self) -> None:
        """Bind and serve in a daemon thread (threaded: SQS long polls block a request thread
        each); returns once the socket listens."""
        if self._server is not None:
            raise RuntimeError("the moto server is already running")
        server = ThreadedMotoServer(ip_address=_HOST, port=self._port, verbose=False)
        server.start()
        self._server = server

    def stop(self) -> None:
        """Stop serving and close the listening socket; stopping twice is harmless.

        Requests still running (a long poll) finish on their own daemon threads.
        """
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def kms_sign_honouring_digests(original: Callable[[Any], str]) -> Callable[[Any], str]:
    """A replacement for moto's ``KmsResponse.sign`` that signs a ``MessageType=DIGEST`` message
    as given (ECDSA_SHA_256), as AWS KMS does; moto 5.2.5 hashes it again (getmoto/moto#10202).

    Install it on the in-process server with ``monkeypatch.setattr(KmsResponse, "sign",
    kms_sign_honouring_digests(KmsResponse.sign))``.
    """
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - tests only
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 - tests only
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed  # noqa: PLC0415
    from moto.kms.utils import ECDSAPrivateKey  # noqa: PLC0415 - tests only

    def sign(self: Any) -> str:
        message = self._get_param("Message")
        algorithm = self._get_param("SigningAlgorithm")
        if self._get_param("MessageType") != "DIGEST" or algorithm != "ECDSA_SHA_256":
            return original(self)
        key = self.kms_backend.describe_key(self._get_param("KeyId"))
        if not isinstance(key.private_key, ECDSAPrivateKey) or len(message) != 32:
            return original(self)
        signature = key.private_key.private_key.sign(message, ec.ECDSA(Prehashed(hashes.SHA256())))
        return json.dumps(
            {
                "KeyId": key.arn,
                "Signature": base64.b64encode(signature).decode("ascii"),
                "SigningAlgorithm": algorithm,
            }
        )

    return sign
