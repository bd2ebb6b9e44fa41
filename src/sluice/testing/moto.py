"""An in-process moto server (a fake AWS) on 127.0.0.1, for the SQS queue's tests.

    with MotoServer() as server:
        env = aws_env(server.endpoint_url)  # set these in the test (monkeypatch.setenv)

Nothing global is touched: no environment variables, no logging handlers, no patched clients.
Tests point botocore at the server through the standard variables `aws_env` returns.

Why not `moto.server.ThreadedMotoServer`: it serves moto's app as is, and every response then
carries two ``Server`` headers (moto's ``amazon.com`` and werkzeug's own). aiohttp (3.13.4 and
again 3.14) rejects such a response outright ("Duplicate 'Server' header found"), so no
aiobotocore call can succeed against it (getmoto/moto#9930, aio-libs/aiohttp#12297). This class
builds the same server from moto's public pieces and drops moto's copy of the header. It also
binds port 0, so the OS picks a free port with no race, and keeps werkzeug's request log out of
stderr (it goes to this module's logger at debug level).

Moto's state is process-wide: two servers in one process share their queues, and so does
`moto.mock_aws`. Tests keep apart by using unique queue names.

This module must not import pytest.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["TEST_CREDENTIALS", "MotoServer", "aws_env"]

log = logging.getLogger(__name__)

_HOST: Final = "127.0.0.1"
_STOP_TIMEOUT_S: Final = 10.0

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


class _QuietRequestHandler(MotoRequestHandler):
    """Moto's request handler, logging to this module instead of werkzeug's stderr handler."""

    def log(self, type: str, message: str, *args: Any) -> None:
        log.debug(message, *args)


def _single_server_header(app: WSGIApplication) -> WSGIApplication:
    """Drop the app's ``Server`` header: werkzeug always sends its own (see the module doc)."""

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:  # the WSGI ``write`` callable, passed through untouched
            kept = [(name, value) for name, value in headers if name.lower() != "server"]
            return start_response(status, kept, exc_info)

        return app(environ, start)

    return wrapped


class MotoServer:
    """Moto's AWS fake as a threaded HTTP server on 127.0.0.1, for as long as the context lasts."""

    def __init__(self, *, port: int = 0) -> None:
        """Serve on ``port`` (0: any free port; `endpoint_url` tells which once started)."""
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``; the server must be started."""
        if self._server is None:
            raise RuntimeError("the moto server is not running")
        return f"http://{_HOST}:{self._server.server_port}"

    def env(self) -> dict[str, str]:
        """`aws_env` for this server."""
        return aws_env(self.endpoint_url)

    def start(self) -> None:
        """Bind and serve in a daemon thread; returns once the socket listens."""
        if self._server is not None:
            raise RuntimeError("the moto server is already running")
        # DomainDispatcherApplication is typed loosely (Any); it is a plain WSGI app.
        app: WSGIApplication = DomainDispatcherApplication(create_backend_app)
        server = make_server(
            _HOST,
            self._port,
            _single_server_header(app),
            threaded=True,  # SQS long polls block a request thread each
            request_handler=_QuietRequestHandler,
        )
        thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
        thread.start()
        self._server, self._thread = server, thread

    def stop(self) -> None:
        """Stop serving and close the listening socket; stopping twice is harmless.

        Requests still running (a long poll) finish on their own daemon threads.
        """
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()  # werkzeug's serve_forever closes the socket as it returns
        thread.join(_STOP_TIMEOUT_S)

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
