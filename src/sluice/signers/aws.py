"""What the AWS signers share: botocore clients and error translation.

Two clients, with the same timeouts and retries: `aws_client`, a synchronous botocore client for
the calls made once at start (Secrets Manager's GetSecretValue, KMS's GetPublicKey), before any
work; and `async_aws_client`, an aiobotocore client for the calls made while the worker runs
(KMS's Sign, awaited with the wallet's nonce counter locked: the event loop goes on). Plain
botocore, not boto3 (botocore comes with aiobotocore).

Both read region, endpoint and credentials the standard way (``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_ACCESS_KEY_ID``…, profiles, instance
roles): nothing of it is Sluice configuration.

Errors never chain the botocore exception (``from None``) and name only the operation, the
exception class and the AWS error code: botocore's texts can hold the endpoint URL. aiobotocore
raises botocore's exceptions too (its HTTP failures are wrapped in them).

botocore and aiobotocore are the aws extra: this module imports without them, and `aws_client`
and `async_aws_client` raise a `ConfigurationError` naming the extra when it is missing
(`sluice.optional`). Everything else here handles what a client raised, so botocore is there by
then.
"""

from __future__ import annotations

import functools
import re
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

from sluice import optional
from sluice.errors import ConfigurationError, SluiceError, TransientError

__all__ = ["async_aws_client", "aws_client", "aws_errors", "describe_failure", "translate"]

_CONNECT_TIMEOUT_S: Final = 2.0
_READ_TIMEOUT_S: Final = 5.0

_CONFIGURATION_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "NotFoundException",  # KMS: no such key
        "ResourceNotFoundException",  # Secrets Manager: no such secret (or version)
        "DisabledException",
        "KMSInvalidStateException",
        "InvalidKeyUsageException",
        "DecryptionFailure",  # Secrets Manager cannot decrypt the secret with its KMS key
    }
)
_THROTTLING_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",  # KMS: request rate exceeded
    }
)
_SAFE_CODE = re.compile(r"[^A-Za-z0-9._-]")
_NEEDED_BY: Final = {
    "kms": "a KMS hot wallet (hot_wallet_kms_key_id)",
    "secretsmanager": "a Secrets Manager hot wallet (hot_wallet_secret_id)",
}


def _exceptions() -> Any:
    """``botocore.exceptions``; botocore ships no type hints, so its names are Any here."""
    import botocore.exceptions  # type: ignore[import-untyped]  # noqa: PLC0415 - aws extra

    return botocore.exceptions


@functools.cache
def aws_errors() -> tuple[type[BaseException], ...]:
    """What a botocore call may raise (OSError: a socket failure botocore did not wrap).

    Only for handling what a botocore client raised: it imports botocore (the aws extra).
    """
    errors = _exceptions()
    return (errors.BotoCoreError, errors.ClientError, OSError)


def aws_client(service: str) -> Any:
    """A botocore client for ``service`` from the standard environment.

    Raises:
        ConfigurationError: No region, botocore cannot build the client, or the aws extra is
            not installed.
    """
    with optional.importing("aws", needed_by=_NEEDED_BY.get(service, f"the AWS {service} client")):
        from botocore.config import Config  # type: ignore[import-untyped]  # noqa: PLC0415
        from botocore.session import get_session  # type: ignore[import-untyped]  # noqa: PLC0415
    config = Config(
        connect_timeout=_CONNECT_TIMEOUT_S,
        read_timeout=_READ_TIMEOUT_S,
        retries={"mode": "standard"},  # AWS_MAX_ATTEMPTS still applies
    )
    try:
        return get_session().create_client(service, config=config)
    except aws_errors() as exc:
        raise ConfigurationError(
            f"cannot create the AWS {service} client: {type(exc).__name__}"
        ) from None


def async_aws_client(service: str) -> AbstractAsyncContextManager[Any]:
    """An aiobotocore client for ``service`` from the standard environment, as an async context
    manager: entering it (in the event loop that will use it) opens the client, leaving it
    closes its connections. Call it where the client is opened: the environment is read then.

    Raises:
        ConfigurationError: The aws extra is not installed.
    """
    with optional.importing("aws", needed_by=_NEEDED_BY.get(service, f"the AWS {service} client")):
        from aiobotocore.config import AioConfig  # type: ignore[import-untyped]  # noqa: PLC0415
        from aiobotocore.session import (  # type: ignore[import-untyped]  # noqa: PLC0415
            get_session as get_aio_session,
        )
    config = AioConfig(
        connect_timeout=_CONNECT_TIMEOUT_S,
        read_timeout=_READ_TIMEOUT_S,
        retries={"mode": "standard"},  # AWS_MAX_ATTEMPTS still applies
    )
    client: AbstractAsyncContextManager[Any] = get_aio_session().create_client(
        service, config=config
    )
    return client


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    code = str((response.get("Error") or {}).get("Code") or "Unknown")
    return _SAFE_CODE.sub("", code)[:100] or "Unknown"


def _http_status(exc: BaseException) -> int:
    response = getattr(exc, "response", None) or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else 0


def describe_failure(exc: BaseException) -> str:
    """``<AWS error code> (HTTP <status>)`` or the exception's class name: nothing else."""
    if isinstance(exc, _exceptions().ClientError):
        return f"{_error_code(exc)} (HTTP {_http_status(exc) or '?'})"
    return type(exc).__name__


def translate(what: str, exc: BaseException) -> SluiceError:
    """A Sluice error for a failed AWS call made while the process runs.

    `ConfigurationError` for missing credentials, access denied, a missing or disabled key;
    `TransientError` for throttling, 5xx and network failures (the worker retries those);
    `SluiceError` for any other refusal.
    """
    errors = _exceptions()
    detail = f"{what} failed: {describe_failure(exc)}"
    if isinstance(exc, errors.ClientError):
        code, status = _error_code(exc), _http_status(exc)
        if code in _CONFIGURATION_CODES:
            return ConfigurationError(detail)
        if code in _THROTTLING_CODES or status >= 500 or status == 0:
            return TransientError(detail)
        return SluiceError(detail)
    if isinstance(
        exc, (errors.NoCredentialsError, errors.PartialCredentialsError, errors.NoRegionError)
    ):
        return ConfigurationError(detail)
    return TransientError(detail)  # connection refused or reset, timeouts, bad responses
