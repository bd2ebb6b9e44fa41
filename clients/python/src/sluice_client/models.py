"""What the API answers, as frozen dataclasses read by hand from its JSON (no pydantic: the SDK
needs only httpx and cryptography).

Amounts (decimal strings in token units on the wire) are `decimal.Decimal`, exact; fees in wei
per gas are `int`; times are timezone-aware `datetime`. Each model keeps the JSON it was read
from in ``raw``, so a field added by a newer Sluice is reachable before the SDK knows it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sluice_client.errors import UnexpectedResponseError

__all__ = [
    "Attempt",
    "Balance",
    "CreditResult",
    "DeadLetter",
    "Event",
    "EventData",
    "Health",
    "HotWallet",
    "Readiness",
    "ReadinessCheck",
    "Transaction",
    "Withdrawal",
    "WithdrawalPage",
    "WithdrawalStatus",
]


class WithdrawalStatus(enum.StrEnum):
    """Where a withdrawal is (docs/api.md, "Withdrawals"). A `str`: compares equal to its name."""

    #: Accepted, waiting for validation; funds not held yet.
    PENDING = "PENDING"
    #: Validated and funds held; waiting for the signer (see ``waiting_reason``).
    VALIDATING = "VALIDATING"
    #: Reserved for the policy engine; funds held.
    PENDING_APPROVAL = "PENDING_APPROVAL"
    #: Signed and stored with its nonce.
    SIGNED = "SIGNED"
    #: Sent (or possibly sent); waiting to be mined.
    BROADCASTING = "BROADCASTING"
    #: Mined; waiting for finality (a re-org sends it back to BROADCASTING).
    CONFIRMING = "CONFIRMING"
    #: Mined with status 1, and final: paid.
    COMPLETED = "COMPLETED"
    #: Not paid; ``error_code`` says why (``insufficient_funds``, ``reverted`` …); funds released.
    FAILED = "FAILED"
    #: Cancelled before signing, or an operator's no-op replacement was mined; funds released.
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        """Whether it can change no more (COMPLETED, FAILED or CANCELLED)."""
        return self in _FINAL

    @property
    def is_cancellable(self) -> bool:
        """Whether a client's `cancel_withdrawal` is still allowed (before signing)."""
        return self in _CANCELLABLE


_FINAL = frozenset(
    {WithdrawalStatus.COMPLETED, WithdrawalStatus.FAILED, WithdrawalStatus.CANCELLED}
)
_CANCELLABLE = frozenset(
    {WithdrawalStatus.PENDING, WithdrawalStatus.VALIDATING, WithdrawalStatus.PENDING_APPROVAL}
)


class _Reader:
    """Typed reads of one JSON object; a missing or mistyped field is an
    `UnexpectedResponseError` naming it, never a KeyError deep in user code."""

    def __init__(self, value: object, what: str) -> None:
        if not isinstance(value, dict):
            raise UnexpectedResponseError(f"{what}: expected a JSON object", code="bad_response")
        self.data: dict[str, Any] = value
        self._what = what

    def _fail(self, name: str, expected: str) -> UnexpectedResponseError:
        got = self.data.get(name, "<missing>")
        return UnexpectedResponseError(
            f"{self._what}.{name}: expected {expected}, got {got!r:.80}", code="bad_response"
        )

    def value(self, name: str, kind: type[Any], expected: str, *, optional: bool = False) -> Any:
        value = self.data.get(name)
        if value is None and optional:
            return None
        # bool is an int: never accept it where a count belongs, nor an int where a bool does.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self._fail(name, expected)
        return value

    def text(self, name: str) -> str:
        text: str = self.value(name, str, "a string")
        return text

    def opt_text(self, name: str) -> str | None:
        text: str | None = self.value(name, str, "a string or null", optional=True)
        return text

    def integer(self, name: str) -> int:
        number: int = self.value(name, int, "an integer")
        return number

    def opt_integer(self, name: str) -> int | None:
        number: int | None = self.value(name, int, "an integer or null", optional=True)
        return number

    def flag(self, name: str) -> bool:
        flag: bool = self.value(name, bool, "true or false")
        return flag

    def amount(self, name: str) -> Decimal:
        text = self.text(name)
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise self._fail(name, "a decimal string") from None
        if not amount.is_finite():
            raise self._fail(name, "a decimal string")
        return amount

    def wei(self, name: str) -> int:
        amount = self.opt_wei(name)
        if amount is None:
            raise self._fail(name, "an integer as a decimal string")
        return amount

    def opt_wei(self, name: str) -> int | None:
        text = self.opt_text(name)
        if text is None:
            return None
        if not (text.isascii() and text.isdigit()):
            raise self._fail(name, "an integer as a decimal string")
        return int(text)

    def moment(self, name: str) -> datetime:
        moment = self.opt_moment(name)
        if moment is None:
            raise self._fail(name, "an RFC 3339 time")
        return moment

    def opt_moment(self, name: str) -> datetime | None:
        text = self.opt_text(name)
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self._fail(name, "an RFC 3339 time") from None
        if moment.tzinfo is None:
            raise self._fail(name, "an RFC 3339 time with a zone")
        return moment

    def status(self, name: str) -> WithdrawalStatus:
        status = self.opt_status(name)
        if status is None:
            raise self._fail(name, "a withdrawal status")
        return status

    def opt_status(self, name: str) -> WithdrawalStatus | None:
        text = self.opt_text(name)
        if text is None:
            return None
        try:
            return WithdrawalStatus(text)
        except ValueError:
            raise self._fail(name, "a known withdrawal status (is the SDK older?)") from None

    def items(self, name: str) -> list[Any]:
        items: list[Any] = self.value(name, list, "a list")
        return items

    def mapping(self, name: str) -> dict[str, Any]:
        item: dict[str, Any] = self.value(name, dict, "an object")
        return item


def read_list(value: object, what: str) -> list[Any]:
    """A JSON array at the top of an answer."""
    if not isinstance(value, list):
        raise UnexpectedResponseError(f"{what}: expected a JSON array", code="bad_response")
    return value


def _raw() -> Any:
    """The ``raw`` field: the JSON a model was read from (not compared, not shown)."""
    return field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A withdrawal (``createWithdrawal``, ``getWithdrawal`` …)."""

    id: str
    user_id: str
    amount: Decimal
    symbol: str | None
    to_address: str
    token_address: str | None
    network: str
    status: WithdrawalStatus
    transaction_hash: str | None
    block_number: int | None
    error: str | None
    error_code: str | None
    waiting_reason: str | None
    created_at: datetime
    updated_at: datetime
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Withdrawal:
        """Read an API withdrawal."""
        r = _Reader(value, "Withdrawal")
        return cls(
            id=r.text("id"),
            user_id=r.text("userId"),
            amount=r.amount("amount"),
            symbol=r.opt_text("symbol"),
            to_address=r.text("toAddress"),
            token_address=r.opt_text("tokenAddress"),
            network=r.text("network"),
            status=r.status("status"),
            transaction_hash=r.opt_text("transactionHash"),
            block_number=r.opt_integer("blockNumber"),
            error=r.opt_text("error"),
            error_code=r.opt_text("errorCode"),
            waiting_reason=r.opt_text("waitingReason"),
            created_at=r.moment("createdAt"),
            updated_at=r.moment("updatedAt"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class WithdrawalPage:
    """One page of ``listWithdrawals``; pass ``next_cursor`` back as ``cursor`` (None: the end)."""

    items: list[Withdrawal]
    next_cursor: str | None

    @classmethod
    def from_json(cls, value: object) -> WithdrawalPage:
        """Read a page."""
        r = _Reader(value, "WithdrawalPage")
        return cls(
            items=[Withdrawal.from_json(item) for item in r.items("items")],
            next_cursor=r.opt_text("nextCursor"),
        )


@dataclass(frozen=True, slots=True)
class EventData:
    """What an event records beside its change of status; each field only where it applies."""

    nonce: int | None = None
    attempt: int | None = None
    transaction_hash: str | None = None
    hot_wallet: str | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    replaces: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    superseded_transaction_id: str | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> EventData:
        """Read an event's ``data``."""
        r = _Reader(value, "EventData")
        return cls(
            nonce=r.opt_integer("nonce"),
            attempt=r.opt_integer("attempt"),
            transaction_hash=r.opt_text("transactionHash"),
            hot_wallet=r.opt_text("hotWallet"),
            max_fee_per_gas=r.opt_wei("maxFeePerGas"),
            max_priority_fee_per_gas=r.opt_wei("maxPriorityFeePerGas"),
            replaces=r.opt_text("replaces"),
            block_number=r.opt_integer("blockNumber"),
            block_hash=r.opt_text("blockHash"),
            superseded_transaction_id=r.opt_text("supersededTransactionId"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a withdrawal's history. ``from_status == status``: something happened
    without a change of status (a replacement at higher fees, a re-org, a wait)."""

    from_status: WithdrawalStatus | None
    status: WithdrawalStatus
    at: datetime
    reason: str
    error_code: str | None
    request_id: str | None
    data: EventData | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Event:
        """Read an event."""
        r = _Reader(value, "Event")
        data = r.data.get("data")
        return cls(
            from_status=r.opt_status("fromStatus"),
            status=r.status("status"),
            at=r.moment("at"),
            reason=r.text("reason"),
            error_code=r.opt_text("errorCode"),
            request_id=r.opt_text("requestId"),
            data=None if data is None else EventData.from_json(data),
            raw=r.data,
        )


def read_events(value: object) -> list[Event]:
    """The ``events`` of ``listWithdrawalEvents``, oldest first."""
    r = _Reader(value, "EventList")
    return [Event.from_json(item) for item in r.items("events")]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One signed form of a transaction.

    ``purpose`` is ``PAYLOAD`` or ``CANCEL`` (a no-op replacement); ``outcome`` ``MINED`` or
    ``REPLACED`` once settled, else None.
    """

    seq: int
    purpose: str
    transaction_hash: str
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    created_at: datetime
    sent_at: datetime | None
    outcome: str | None
    note: str | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Attempt:
        """Read an attempt."""
        r = _Reader(value, "Attempt")
        return cls(
            seq=r.integer("seq"),
            purpose=r.text("purpose"),
            transaction_hash=r.text("transactionHash"),
            max_fee_per_gas=r.wei("maxFeePerGas"),
            max_priority_fee_per_gas=r.wei("maxPriorityFeePerGas"),
            created_at=r.moment("createdAt"),
            sent_at=r.opt_moment("sentAt"),
            outcome=r.opt_text("outcome"),
            note=r.opt_text("note"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Transaction:
    """The on-chain transaction carrying a withdrawal, with every attempt at it.

    ``kind`` is ``PAYOUT`` or ``FILLER``; ``status`` one of ``SIGNED``, ``BROADCAST``,
    ``MINED``, ``CONFIRMED``, ``REVERTED``, ``CANCELLED``, ``SUPERSEDED``.
    """

    id: str
    network: str
    hot_wallet: str
    nonce: int
    kind: str
    status: str
    block_number: int | None
    block_hash: str | None
    mined_hash: str | None
    cancel_requested_at: datetime | None
    attempts: list[Attempt]
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Transaction:
        """Read a transaction."""
        r = _Reader(value, "Transaction")
        return cls(
            id=r.text("id"),
            network=r.text("network"),
            hot_wallet=r.text("hotWallet"),
            nonce=r.integer("nonce"),
            kind=r.text("kind"),
            status=r.text("status"),
            block_number=r.opt_integer("blockNumber"),
            block_hash=r.opt_text("blockHash"),
            mined_hash=r.opt_text("minedHash"),
            cancel_requested_at=r.opt_moment("cancelRequestedAt"),
            attempts=[Attempt.from_json(item) for item in r.items("attempts")],
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Balance:
    """A user's balance of one asset on one network, in token units."""

    network: str
    token_address: str | None
    symbol: str | None
    available: Decimal
    held: Decimal
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Balance:
        """Read a balance."""
        r = _Reader(value, "Balance")
        return cls(
            network=r.text("network"),
            token_address=r.opt_text("tokenAddress"),
            symbol=r.opt_text("symbol"),
            available=r.amount("available"),
            held=r.amount("held"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class CreditResult:
    """The outcome of a credit: ``credited`` is False when the reference was credited before."""

    reference: str
    credited: bool
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> CreditResult:
        """Read a credit's outcome."""
        r = _Reader(value, "CreditResult")
        return cls(reference=r.text("reference"), credited=r.flag("credited"), raw=r.data)


@dataclass(frozen=True, slots=True)
class HotWallet:
    """A hot wallet: ``state`` is ``active`` or ``draining``; ``native_balance`` in token units."""

    network: str
    address: str
    state: str
    in_flight: int
    native_symbol: str
    native_balance: Decimal
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> HotWallet:
        """Read a hot wallet."""
        r = _Reader(value, "HotWallet")
        return cls(
            network=r.text("network"),
            address=r.text("address"),
            state=r.text("state"),
            in_flight=r.integer("inFlight"),
            native_symbol=r.text("nativeSymbol"),
            native_balance=r.amount("nativeBalance"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A job that exhausted its retries (requeue it with `requeue_dead_letter`)."""

    id: str
    job: str
    payload: dict[str, Any]
    attempts: int
    reason: str
    last_error: str | None
    dead_at: datetime
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> DeadLetter:
        """Read a dead letter."""
        r = _Reader(value, "DeadLetter")
        return cls(
            id=r.text("id"),
            job=r.text("job"),
            payload=r.mapping("payload"),
            attempts=r.integer("attempts"),
            reason=r.text("reason"),
            last_error=r.opt_text("lastError"),
            dead_at=r.moment("deadAt"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """One readiness check (``database``, ``queue``, ``cache``, ``chain:<network>``)."""

    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Readiness:
    """``getReadiness``: ``status`` is ``ready``, ``degraded`` (ready, cache down) or
    ``not_ready`` (answered with 503, which this SDK returns rather than raises)."""

    status: str
    checks: dict[str, ReadinessCheck]
    raw: Mapping[str, Any] = _raw()

    @property
    def ready(self) -> bool:
        """Whether the instance can do its work (``ready`` or ``degraded``)."""
        return self.status != "not_ready"

    @classmethod
    def from_json(cls, value: object) -> Readiness:
        """Read a readiness answer."""
        r = _Reader(value, "Readiness")
        checks = {}
        for name, item in r.mapping("checks").items():
            check = _Reader(item, f"Readiness.checks.{name}")
            checks[name] = ReadinessCheck(ok=check.flag("ok"), detail=check.text("detail"))
        return cls(status=r.text("status"), checks=checks, raw=r.data)


@dataclass(frozen=True, slots=True)
class Health:
    """``getHealth``: ``status`` is ``ok`` while the process runs."""

    status: str

    @classmethod
    def from_json(cls, value: object) -> Health:
        """Read a liveness answer."""
        return cls(status=_Reader(value, "Health").text("status"))
