"""Every operation once, as a `Call`: the request to send and how to read its answer.

The sync and async clients only send calls (`SluiceClient._run`, `AsyncSluiceClient._run`), so
what each operation sends and reads is written, and tested, once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from sluice_client._reader import read_list
from sluice_client.errors import UnexpectedResponseError, error_from_response
from sluice_client.models import (
    Balance,
    CreditResult,
    DeadLetter,
    Event,
    Health,
    HotWallet,
    Network,
    Readiness,
    Transaction,
    Withdrawal,
    WithdrawalPage,
    WithdrawalStatus,
    read_events,
)
from sluice_client.status import FeeLevel

T = TypeVar("T")

#: What amounts are given as: exact decimals only.
Amount = Decimal | str

_SUCCESS = frozenset(range(200, 300))


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and the reading of its answer.

    Attributes:
        method: The HTTP method.
        path: The path, its parameters already percent-encoded.
        read: Turns a successful answer into the result.
        params: The query parameters.
        body: The JSON body, or None for none.
        repeatable: Whether sending it twice does no more than sending it once (`Retries`).
        answers: The statuses that are answers, not errors.
    """

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    repeatable: bool = True
    answers: frozenset[int] = _SUCCESS

    def content(self) -> bytes | None:
        """The body's bytes (compact JSON), or None."""
        if self.body is None:
            return None
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()

    def headers(self, request_id: str | None) -> dict[str, str]:
        """The call's own headers: its body's type, and the caller's request id."""
        headers = {} if self.body is None else {"Content-Type": "application/json"}
        if request_id is not None:
            headers["X-Request-ID"] = request_id
        return headers


def new_withdrawal_id() -> str:
    """A fresh withdrawal id, in the form the server makes its own (``wd_<32 hex>``)."""
    return f"wd_{uuid.uuid4().hex}"


def amount_text(value: Amount, name: str = "amount") -> str:
    """An amount as the API takes it: a decimal string in token units.

    Raises:
        TypeError: A float (binary floats are not exact: ``0.1 + 0.2``), or another type.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")  # never an exponent: Decimal("1E+2") is "100"
    if isinstance(value, float):
        raise TypeError(
            f"{name} must be a decimal.Decimal or a str, never a float (not exact):"
            f" pass Decimal({str(value)!r}) or {str(value)!r}"
        )
    raise TypeError(f"{name} must be a decimal.Decimal or a str, not {type(value).__name__}")


def time_text(moment: datetime, name: str) -> str:
    """A timezone-aware time in RFC 3339, in UTC.

    Raises:
        ValueError: A naive datetime (its zone would be a guess).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} needs a time zone, e.g. datetime.now(UTC)")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _segment(value: str) -> str:
    """A path parameter, percent-encoded so it stays one segment whatever it holds."""
    return quote(value, safe="")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UnexpectedResponseError(
            f"the answer to {response.request.method} {response.request.url.path} is not JSON",
            status=response.status_code,
            code="bad_response",
            request_id=response.headers.get("X-Request-ID"),
        ) from None


def _reader(read: Callable[[Any], T]) -> Callable[[httpx.Response], T]:
    def read_response(response: httpx.Response) -> T:
        try:
            return read(_json(response))
        except UnexpectedResponseError as exc:
            exc.status = response.status_code
            exc.request_id = response.headers.get("X-Request-ID")
            raise

    return read_response


def _list_of(read: Callable[[object], T], what: str) -> Callable[[httpx.Response], list[T]]:
    return _reader(lambda value: [read(item) for item in read_list(value, what)])


def _nothing(_response: httpx.Response) -> None:
    return None


def _without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def create_withdrawal(
    *,
    user_id: str,
    amount: Amount,
    to_address: str,
    network: str,
    token_address: str | None,
    id: str | None,
    priority: FeeLevel | str | None = None,
) -> Call[Withdrawal]:
    """``POST /v1/withdrawals``: always with an id, so a repeat is idempotent. ``priority`` only
    when given: a Sluice before fee levels refuses the field, and the network's default is the
    server's to apply."""
    body = {
        "id": id if id is not None else new_withdrawal_id(),
        "userId": user_id,
        "amount": amount_text(amount),
        "toAddress": to_address,
        "tokenAddress": token_address,
        "network": network,
    }
    if priority is not None:
        body["priority"] = str(priority)
    return Call("POST", "/v1/withdrawals", _reader(Withdrawal.from_json), body=body)


def get_withdrawal(withdrawal_id: str) -> Call[Withdrawal]:
    """``GET /v1/withdrawals/{withdrawalId}``."""
    path = f"/v1/withdrawals/{_segment(withdrawal_id)}"
    return Call("GET", path, _reader(Withdrawal.from_json))


def list_withdrawals(
    *,
    user_id: str | None,
    status: WithdrawalStatus | str | None,
    updated_since: datetime | None,
    limit: int | None,
    cursor: str | None,
) -> Call[WithdrawalPage]:
    """``GET /v1/withdrawals``: one page."""
    params = _without_none(
        {
            "userId": user_id,
            "status": None if status is None else str(status),
            "updatedSince": None
            if updated_since is None
            else time_text(updated_since, "updated_since"),
            "limit": None if limit is None else str(limit),
            "cursor": cursor,
        }
    )
    return Call("GET", "/v1/withdrawals", _reader(WithdrawalPage.from_json), params=params)


def cancel_withdrawal(withdrawal_id: str) -> Call[Withdrawal]:
    """``POST /v1/withdrawals/{withdrawalId}/cancel`` (a repeat returns it, CANCELLED)."""
    path = f"/v1/withdrawals/{_segment(withdrawal_id)}/cancel"
    return Call("POST", path, _reader(Withdrawal.from_json))


def list_withdrawal_events(withdrawal_id: str) -> Call[list[Event]]:
    """``GET /v1/withdrawals/{withdrawalId}/events``."""
    path = f"/v1/withdrawals/{_segment(withdrawal_id)}/events"
    return Call("GET", path, _reader(read_events))


def get_withdrawal_transaction(withdrawal_id: str) -> Call[Transaction]:
    """``GET /v1/withdrawals/{withdrawalId}/transaction``."""
    path = f"/v1/withdrawals/{_segment(withdrawal_id)}/transaction"
    return Call("GET", path, _reader(Transaction.from_json))


def cancel_withdrawal_as_operator(withdrawal_id: str, reason: str | None) -> Call[Withdrawal]:
    """``POST /v1/admin/withdrawals/{withdrawalId}/cancel`` (200 cancelled, 202 replacing)."""
    path = f"/v1/admin/withdrawals/{_segment(withdrawal_id)}/cancel"
    body = None if reason is None else {"reason": reason}
    return Call("POST", path, _reader(Withdrawal.from_json), body=body)


def get_user_balances(user_id: str) -> Call[list[Balance]]:
    """``GET /v1/users/{userId}/balances``."""
    path = f"/v1/users/{_segment(user_id)}/balances"
    return Call("GET", path, _list_of(Balance.from_json, "balances"))


def credit_balance(
    *,
    user_id: str,
    network: str,
    amount: Amount,
    reference: str,
    token_address: str | None,
) -> Call[CreditResult]:
    """``POST /v1/admin/ledger/credits`` (once per reference)."""
    body = {
        "userId": user_id,
        "network": network,
        "tokenAddress": token_address,
        "amount": amount_text(amount),
        "reference": reference,
    }
    return Call("POST", "/v1/admin/ledger/credits", _reader(CreditResult.from_json), body=body)


def list_networks() -> Call[list[Network]]:
    """``GET /v1/networks``."""
    return Call("GET", "/v1/networks", _list_of(Network.from_json, "networks"))


def list_hot_wallets() -> Call[list[HotWallet]]:
    """``GET /v1/admin/hot-wallets``."""
    return Call("GET", "/v1/admin/hot-wallets", _list_of(HotWallet.from_json, "hot wallets"))


def list_dead_letters() -> Call[list[DeadLetter]]:
    """``GET /v1/admin/dead-letters``."""
    return Call("GET", "/v1/admin/dead-letters", _list_of(DeadLetter.from_json, "dead letters"))


def requeue_dead_letter(message_id: str) -> Call[None]:
    """``POST /v1/admin/dead-letters/{messageId}/requeue``: not repeated when the answer is
    lost (a second requeue finds nothing, 404)."""
    path = f"/v1/admin/dead-letters/{_segment(message_id)}/requeue"
    return Call("POST", path, _nothing, repeatable=False)


def get_health() -> Call[Health]:
    """``GET /health``."""
    return Call("GET", "/health", _reader(Health.from_json))


def _readiness(response: httpx.Response) -> Readiness:
    # Sluice's 503 here carries the checks, not a problem; a proxy's 503 does not: an error.
    if response.status_code == 503:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not (isinstance(body, dict) and "checks" in body):
            raise error_from_response(response)
    return _reader(Readiness.from_json)(response)


def get_readiness() -> Call[Readiness]:
    """``GET /ready``: 200 and 503 both answer with the checks."""
    return Call("GET", "/ready", _readiness, answers=_SUCCESS | {503})
