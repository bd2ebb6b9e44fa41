"""sluice-client: a typed Python client of Sluice's HTTP API, sync (`SluiceClient`) and async
(`AsyncSluiceClient`), on httpx.

    from decimal import Decimal
    from sluice_client import SluiceClient

    with SluiceClient("http://127.0.0.1:8000", api_key) as sluice:
        withdrawal = sluice.create_withdrawal(
            id="payout-42", user_id="user-42", amount=Decimal("1.5"),
            to_address="0x…", network="sepolia",
        )

Failed calls raise a `SluiceError` subclass carrying the problem's ``code`` and field errors;
keys made with a public key sign every request with a `SigningKey`. See README.md.
"""

from sluice_client._calls import Amount, new_withdrawal_id
from sluice_client._version import __version__
from sluice_client.async_client import AsyncSluiceClient
from sluice_client.client import SluiceClient
from sluice_client.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    FieldError,
    IdempotencyConflictError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    SluiceError,
    TransportError,
    UnexpectedResponseError,
)
from sluice_client.models import (
    Attempt,
    Balance,
    Batch,
    CircuitBreaker,
    CreditResult,
    DeadLetter,
    Event,
    EventData,
    Explorer,
    FeeLevel,
    FeeLevelPrice,
    FeeLimits,
    Finality,
    Health,
    HotWallet,
    Network,
    NetworkAsset,
    NetworkBatching,
    NetworkHotWallet,
    NetworkPause,
    Readiness,
    ReadinessCheck,
    RpcHealth,
    Transaction,
    Withdrawal,
    WithdrawalPage,
    WithdrawalStatus,
)
from sluice_client.retries import Retries
from sluice_client.signing import SigningKey, SluiceAuth

__all__ = [
    "Amount",
    "AsyncSluiceClient",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "Balance",
    "Batch",
    "CircuitBreaker",
    "ConflictError",
    "CreditResult",
    "DeadLetter",
    "Event",
    "EventData",
    "Explorer",
    "FeeLevel",
    "FeeLevelPrice",
    "FeeLimits",
    "FieldError",
    "Finality",
    "Health",
    "HotWallet",
    "IdempotencyConflictError",
    "InvalidRequestError",
    "InvalidStateError",
    "Network",
    "NetworkAsset",
    "NetworkBatching",
    "NetworkHotWallet",
    "NetworkPause",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Readiness",
    "ReadinessCheck",
    "Retries",
    "RpcHealth",
    "ServerError",
    "ServiceUnavailableError",
    "SigningKey",
    "SluiceAuth",
    "SluiceClient",
    "SluiceError",
    "Transaction",
    "TransportError",
    "UnexpectedResponseError",
    "Withdrawal",
    "WithdrawalPage",
    "WithdrawalStatus",
    "__version__",
    "new_withdrawal_id",
]
