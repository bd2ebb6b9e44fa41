"""Every error Sluice raises on purpose derives from `SluiceError`.

Each error carries a stable, machine-readable `code`; the HTTP layer maps codes to statuses and
renders them as problem+json. Messages never contain secrets or internal details.

    SluiceError
    ├── InvalidRequestError (ValueError)       invalid_request
    │   ├── InvalidAmountError                 invalid_amount
    │   ├── InvalidAddressError                invalid_address
    │   ├── UnknownNetworkError                unknown_network
    │   └── UnknownTokenError                  unknown_token
    ├── InsufficientFundsError                 insufficient_funds
    ├── InvalidStateError                      invalid_state
    ├── IdempotencyConflictError               idempotency_conflict
    ├── NotFoundError (LookupError)            not_found
    ├── UnauthorizedError                      unauthorized
    │   └── InvalidSignatureError              invalid_signature
    ├── RateLimitedError                       rate_limited
    ├── ForbiddenError                         forbidden
    ├── ConfigurationError                     configuration_error
    ├── CallRevertedError                      call_reverted   (the call's answer: not retried)
    └── TransientError                         transient   (the worker retries it with backoff)
        └── ChainUnavailableError              chain_unavailable
            └── TransactionRefusedError        transaction_refused
        └── SigningRefusedError                signing_refused
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class SluiceError(Exception):
    """Root of every error Sluice raises on purpose."""

    code = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequestError(SluiceError, ValueError):
    """The caller sent something that can never succeed as sent.

    ``field`` names the request field at fault (as the caller spelled it, e.g. ``toAddress``)
    and ``location`` where it was (``body``, ``query``, ``path``, ``header``), when known: the
    HTTP layer lists it in the problem's ``errors``.
    """

    code = "invalid_request"

    def __init__(self, detail: str, *, field: str | None = None, location: str = "body") -> None:
        super().__init__(detail)
        self.field = field
        self.location = location


@contextmanager
def about(field: str, location: str = "body") -> Iterator[None]:
    """Name the field an `InvalidRequestError` raised inside is about (unless it names one).

    The domain's parsers (amounts, addresses) do not know which field they parse; the caller
    that hands them a field's value does::

        with about("toAddress"):
            destination = parse_address(request.to_address)
    """
    try:
        yield
    except InvalidRequestError as exc:
        if exc.field is None:
            exc.field, exc.location = field, location
        raise


class PolicyError(InvalidRequestError):
    """A policy file that cannot be loaded; ``field`` is the path of the value at fault
    (``rules[2].velocity.window``)."""

    code = "invalid_policy"


class InvalidAmountError(InvalidRequestError):
    """An amount that is not a positive decimal within the asset's precision."""

    code = "invalid_amount"


class AmountLimitError(InvalidAmountError):
    """An amount below the asset's minimum or above its maximum (the policy's per-asset terms)."""

    code = "amount_limit"


class InvalidAddressError(InvalidRequestError):
    """An address that is malformed, fails its checksum, or may not receive a withdrawal."""

    code = "invalid_address"


class UnknownNetworkError(InvalidRequestError):
    """A network that this deployment does not serve."""

    code = "unknown_network"


class UnknownTokenError(InvalidRequestError):
    """A token that is not configured on the network."""

    code = "unknown_token"


class InsufficientFundsError(SluiceError):
    """The user's available balance does not cover the amount."""

    code = "insufficient_funds"


class InvalidStateError(SluiceError):
    """The object is not in a state that allows the operation (for example a late cancel)."""

    code = "invalid_state"


class InBatchError(InvalidStateError):
    """An operator's cancel of one withdrawal of a signed batch: refused, since the batch's
    transaction pays the others too (docs/batching.md)."""

    code = "in_batch"


class IdempotencyConflictError(SluiceError):
    """An idempotency key (withdrawal id, credit reference) was reused for a different body."""

    code = "idempotency_conflict"


class NotFoundError(SluiceError, LookupError):
    """No such object (or not visible to this caller)."""

    code = "not_found"


class UnauthorizedError(SluiceError):
    """Missing or unknown credentials."""

    code = "unauthorized"


class InvalidSignatureError(UnauthorizedError):
    """A key that must sign its requests sent one unsigned, badly signed, stale or replayed."""

    code = "invalid_signature"


class RateLimitedError(SluiceError):
    """The key made more requests this second than it may; retry after ``retry_after_s``."""

    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class ForbiddenError(SluiceError):
    """Valid credentials without the scope the operation needs."""

    code = "forbidden"


class OperatorRequiredError(ForbiddenError):
    """Operator work (approvals, policy, pauses, operators) asked with a service key, or with
    the key of an operator who is disabled or whose role does not cover it."""

    code = "operator_required"


class SelfApprovalError(ForbiddenError):
    """An operator approving a withdrawal asked for with their own key."""

    code = "self_approval"


class StaleRevisionError(InvalidStateError):
    """An approval of a revision of the withdrawal other than the one it is now."""

    code = "stale_revision"


class AlreadyDecidedError(InvalidStateError):
    """An operator deciding twice on one withdrawal."""

    code = "already_decided"


class AlreadyExistsError(SluiceError):
    """A name that must be unique is taken (an operator's)."""

    code = "already_exists"


class ConfigurationError(SluiceError):
    """The deployment's configuration is missing or inconsistent."""

    code = "configuration_error"


class CallRevertedError(SluiceError):
    """A call (``eth_call``, ``eth_estimateGas``) reverted or halted: the chain's answer to the
    call, not a failure of the node, so no other node would answer otherwise and retrying the
    same call on the same state gives the same answer.

    ``reason`` is ``execution_reverted`` (REVERT), ``invalid_opcode`` (INVALID, 0xfe, or an
    opcode the chain does not have), ``out_of_gas`` or ``execution_halted`` (any other
    exceptional halt: a stack underflow, a bad jump...); ``data`` is the revert data the node
    returned, if any. The message holds a sanitised excerpt of the node's text.
    """

    code = "call_reverted"

    def __init__(
        self, detail: str, *, reason: str = "execution_reverted", data: bytes = b""
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.data = data


class TransientError(SluiceError):
    """A failure that may pass on its own (a node down or slow); the worker retries it."""

    code = "transient"


class ChainUnavailableError(TransientError):
    """The chain's RPC endpoint did not answer usefully. ``reason`` is a short, URL-free
    classification when the adapter knows one (``timeout``, ``http_503``...), else empty."""

    code = "chain_unavailable"

    def __init__(self, detail: str, *, reason: str = "") -> None:
        super().__init__(detail)
        self.reason = reason


class TransactionRefusedError(ChainUnavailableError):
    """The node answered a send with a refusal of the transaction itself: it did not enter the
    node's pool. Unlike a timeout or a dropped connection, which may hide a success, this is
    known not to be sent, and another node of the chain would answer the same.

    ``reason`` classifies it (``insufficient_funds``, ``fee_too_low``, ``nonce_too_high``,
    ``gas_too_low``, ``wrong_chain_id``, ``rejected``...). ``permanent`` is True when these
    signed bytes can never be accepted, whatever the chain's state becomes (a gas limit below
    the intrinsic gas or above the cap, a tip above the fee cap, another chain's id, a bad
    signature, a type the chain does not take); False when the state may change the answer
    (funds arrive, the base fee falls, a nonce gap fills, the pool drains).
    """

    code = "transaction_refused"

    def __init__(self, detail: str, *, reason: str = "rejected", permanent: bool = False) -> None:
        super().__init__(detail, reason=reason)
        self.permanent = permanent


class SigningRefusedError(TransientError):
    """The signer kept apart (`sluice signer`) would not sign: the request does not match the
    withdrawal records, or it must wait (an earlier signature of the withdrawal is not provably
    spent yet). Retried like any transient error, and alert-worthy if it persists."""

    code = "signing_refused"
